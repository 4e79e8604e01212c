# legacy policy field
name = "dev"
path "*" { policy = "deny" }
path "stage/*" { policy = "sudo" }
path "prod/version" { policy = "read" comment = "c" }
path "/foo/bar" { policy = "write" capabilities = ["patch"] }
