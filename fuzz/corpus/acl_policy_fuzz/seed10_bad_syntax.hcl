path "a" { x = <<EOF
hi
EOF
}
path "b": {}
