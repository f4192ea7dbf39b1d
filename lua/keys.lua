-- Client-side API key rotation, as a gateway user writes it: round-robin over the keys of a
-- file (one per line), a key that got 429 rests for its Retry-After, and every request is
-- tagged by its key's place in the file ("key-1", "key-2", …: the keys themselves never
-- reach a report).
--
--   ratebench -R50 -c20 -d30s -s lua/keys.lua \
--     -m POST -H 'Content-Type: application/json' --body-file chat.json \
--     http://127.0.0.1:8080/v1/chat/completions -- keys.txt
--
-- keys.lua only sets the Authorization header: method, path, headers and body are the
-- command line's. The open loop never waits for a key: when every key rests, the one that
-- wakes first is used anyway (and the server's 429 is counted, as it should be).
local keys, resting, turn = {}, {}, 0

function init(args)
  local path = args[1] or error("keys.lua needs a file of API keys: ... -- keys.txt")
  for line in io.lines(path) do
    local k = line:match("^%s*(.-)%s*$")
    if k ~= "" then keys[#keys + 1] = k end
  end
  if #keys == 0 then error("keys.lua: no keys in " .. path) end
end

local function pick()
  local now = os.time()
  for _ = 1, #keys do
    turn = turn % #keys + 1
    if (resting[turn] or 0) <= now then return turn end
  end
  -- Every key rests: the one that wakes first (in turn among equals).
  local best
  for _ = 1, #keys do
    turn = turn % #keys + 1
    if not best or resting[turn] < resting[best] then best = turn end
  end
  turn = best
  return best
end

request = function()
  local k = pick()
  wrk.headers["Authorization"] = "Bearer " .. keys[k]
  -- The request, its tag, and the key's index: response() gets it back as its 4th argument.
  return wrk.format(), "key-" .. k, k
end

response = function(status, headers, body, k)
  if status == 429 and k then
    local wait = tonumber(headers["retry-after"] or "") or 1
    resting[k] = os.time() + math.max(1, math.ceil(wait))
  end
end
