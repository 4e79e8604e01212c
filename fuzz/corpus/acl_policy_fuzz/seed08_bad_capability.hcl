path "a" {
  capabilities = ["read"]
  capabilities = ["raed"]
}
