-- wrk script: create Vault tokens with a short TTL (auth/token/create), as fast as the server
-- takes them: each one is a token and its lease, committed together. TTL from $LEASE_TTL.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Vault-Token"] = os.getenv("SIGIL_TOKEN")
wrk.body = '{"policies":["default"],"ttl":"' .. (os.getenv("LEASE_TTL") or "90s") .. '","no_default_policy":false}'
