-- wrk script: dynamic database credentials, as hvac's generate_credentials asks for them.
wrk.method = "GET"
wrk.headers["X-Vault-Token"] = os.getenv("SIGIL_TOKEN")
