-- Multi-turn chat conversations, as chat users (and Locust scripts) keep a history: each
-- thread keeps its conversations; each request continues one whose last answer has already
-- arrived, or starts a new one when none is ready — so the open-loop schedule never waits
-- for a turn. Turns are tagged turn-1, turn-2, …, so the By tag table shows how time to first
-- token grows with the context.
--
--   ratebench -R5 -c20 -d60s -s lua/multiturn.lua \
--     http://127.0.0.1:8080/v1/chat/completions -- model=gpt-4o-mini turns=4
--
-- Arguments after `--` (all optional): model=NAME (default gpt-4o-mini), turns=N (turns per
-- conversation, default 4), stream=true|false (default true), max_tokens=N (default 64),
-- key=TOKEN (sent as Authorization: Bearer TOKEN).
local model, turns, stream, max_tokens = "gpt-4o-mini", 4, true, 64
local ready = {} -- conversations whose last answer has arrived
local asked = 0
local questions = {
  "What is coordinated omission?",
  "Why does it hide the tail?",
  "How does an open-loop generator avoid it?",
  "Give an example with numbers.",
  "And what should a CI gate check?",
}

function init(args)
  for i = 1, #args do
    local k, v = string.match(args[i], "^([%w_]+)=(.*)$")
    if k == "model" then model = v
    elseif k == "turns" then turns = tonumber(v) or error("turns=" .. v .. ": not a number")
    elseif k == "stream" then stream = (v == "true")
    elseif k == "max_tokens" then max_tokens = tonumber(v) or error("max_tokens=" .. v)
    elseif k == "key" then wrk.headers["Authorization"] = "Bearer " .. v
    else error("unknown argument " .. args[i] .. " (model=, turns=, stream=, max_tokens=, key=)")
    end
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

request = function()
  local conv = table.remove(ready)
  if not conv then conv = { messages = {} } end
  local turn = math.floor(#conv.messages / 2) + 1
  asked = asked + 1
  conv.messages[#conv.messages + 1] = {
    role = "user",
    content = questions[(asked - 1) % #questions + 1],
  }
  local body = json.encode({
    model = model, messages = conv.messages, stream = stream, max_tokens = max_tokens,
  })
  -- The conversation comes back to response() as its 4th argument.
  return wrk.format(nil, nil, nil, body), "turn-" .. turn, conv
end

-- The assistant's text: the content deltas of an event stream, or the whole message.
local function answer(body)
  if not stream then
    local ok, j = pcall(json.decode, body)
    return ok and j.choices and j.choices[1] and j.choices[1].message.content or ""
  end
  local parts = {}
  for data in body:gmatch("data: ([^\n]*)") do
    if data ~= "[DONE]" then
      local ok, j = pcall(json.decode, data)
      local c = ok and j.choices and j.choices[1] and j.choices[1].delta
      if c and type(c.content) == "string" then parts[#parts + 1] = c.content end
    end
  end
  return table.concat(parts)
end

response = function(status, headers, body, conv)
  -- A failed turn ends its conversation; a finished one is dropped.
  if not conv or status ~= 200 then return end
  conv.messages[#conv.messages + 1] = { role = "assistant", content = answer(body) }
  if #conv.messages < 2 * turns then ready[#ready + 1] = conv end
end
