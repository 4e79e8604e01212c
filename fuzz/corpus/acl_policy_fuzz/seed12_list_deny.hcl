path "foo/metadata/*" { capabilities = ["list"] }
path "foo/metadata/private/*" { capabilities = ["deny"] }
path "foo/metadata/private/granted/*" { capabilities = ["list", "subscribe", "recover"] }
path "sys/policies/acl" { capabilities = ["list"] }
path "foo/metadata/private/x" { capabilities = ["read"] }
path "foo/metadata/private/x" { capabilities = ["deny", "bogus"] }
