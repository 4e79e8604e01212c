path "test/types" {
	capabilities = ["create", "sudo"]
	allowed_parameters = {
		"map" = [{"good" = "one"}]
		"int" = [1, 2, -3.5e2, 0x1f]
	}
	denied_parameters { "string" = ["test"], "bool" = [false] }
	required_parameters = ["foo"]
	min_wrapping_ttl = 300
	max_wrapping_ttl = "1h30m"
	control_group = { ttl = "4h" factor "ops" { identity { group_names = ["ops"] approvals = 1 } } }
}
