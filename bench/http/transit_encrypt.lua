-- wrk script: transit encrypt of 1 KiB (base64 plaintext, as hvac sends it) under one key; the
-- URL given to wrk is <mount>/encrypt/<key>.
local plaintext = string.rep("QUFB", 342)  -- base64 of 1026 bytes
wrk.method = "POST"
wrk.body = '{"plaintext":"' .. plaintext .. '"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Vault-Token"] = os.getenv("SIGIL_TOKEN")
