-- wrk script: a Vault-face read as hvac sends it (GET with X-Vault-Token); the path is wrk's URL.
wrk.method = "GET"
local token = os.getenv("SIGIL_TOKEN")
if token then wrk.headers["X-Vault-Token"] = token end
