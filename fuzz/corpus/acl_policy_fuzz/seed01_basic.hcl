path "secret/data/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}
path "secret/data/super-secret" {
  capabilities = ["deny"]
}
