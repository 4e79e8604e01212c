-- wrk script: GET one secret (the path is passed as wrk's URL), authenticated with the bearer
-- token in $SIGIL_TOKEN when set (nginx ignores the header).
wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
local token = os.getenv("SIGIL_TOKEN")
if token then wrk.headers["Authorization"] = "Bearer " .. token end
