-- wrk script: LIST the secrets of a namespace (100 objects), authenticated with $SIGIL_TOKEN.
wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
local token = os.getenv("SIGIL_TOKEN")
if token then wrk.headers["Authorization"] = "Bearer " .. token end
