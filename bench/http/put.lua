-- wrk script: PUT (unconditional update) of one of 64 secrets, chosen at random, with a 1 KiB
-- value; every request is a durable write (acknowledged after the group-commit fsync), and
-- records a history version. Authenticated with the bearer token in $SIGIL_TOKEN.
-- The URL given to wrk is the secrets collection; the name is appended here.
local value = string.rep("A", 1368)  -- base64 of 1026 bytes, about 1 KiB of data
local headers = {["Content-Type"] = "application/json"}
local token = os.getenv("SIGIL_TOKEN")
if token then headers["Authorization"] = "Bearer " .. token end
request = function()
  local name = "bench-put-" .. math.random(0, 63)
  local body = '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"' .. name .. '"},"data":{"value":"' .. value .. '"}}'
  return wrk.format("PUT", wrk.path .. "/" .. name, headers, body)
end
