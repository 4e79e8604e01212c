path "foo/+*" { capabilities = ["read"] }
