-- wrk script: PUT (unconditional update) of one of 64 secrets, chosen at random, with a 1 KiB
-- value; every request is a durable write (acknowledged after the group-commit fsync).
-- The URL given to wrk is the secrets collection; the name is appended here.
local value = string.rep("A", 1368)  -- base64 of 1026 bytes, about 1 KiB of data
request = function()
  local name = "bench-put-" .. math.random(0, 63)
  local body = '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"' .. name .. '"},"data":{"value":"' .. value .. '"}}'
  return wrk.format("PUT", wrk.path .. "/" .. name, {["Content-Type"] = "application/json"}, body)
end
