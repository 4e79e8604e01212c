path "secret/+/teamb" { capabilities = ["read"] }
path "secret/+/+/teamb*" { capabilities = ["list"] }
path "+/*" { capabilities = ["read"] }
path "*" { capabilities = ["update"] }
path "x/+y/+" { capabilities = ["sudo"] }
