/* block
   comment */ path "esc\"aped\\\u00e9\x41\101" { capabilities = [,"read",,] } // line
# hash
path
  "spread" { capabilities
  = [ "list" ,
  ] }, "path" "k" {}
