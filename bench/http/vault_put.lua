-- wrk script: a KV version 2 write as hvac sends it (POST <mount>/data/<path> with
-- X-Vault-Token) of one of 64 keys, chosen at random, with a 1 KiB value. Every request is a
-- durable write that adds a version. The URL given to wrk is <mount>/data/; the key is appended.
local value = string.rep("A", 1368)
local headers = {["Content-Type"] = "application/json", ["X-Vault-Token"] = os.getenv("SIGIL_TOKEN")}
request = function()
  local body = '{"data":{"value":"' .. value .. '"}}'
  return wrk.format("POST", wrk.path .. "bench-put-" .. math.random(0, 63), headers, body)
end
