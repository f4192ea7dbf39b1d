-- OpenAI-style streamed chat requests with a weighted mix of models and a prompt pool.
--
--   ratebench -R5 -c40 -d30s -s lua/openai_chat.lua http://127.0.0.1:8080/v1/chat/completions \
--     -- models=gpt-4o-mini:3,gpt-4o:1 max_tokens=256 stream=true key=sk-...
--
-- Arguments after `--` (all optional):
--   models=NAME:WEIGHT,...   the mix of models (default gpt-4o-mini:1)
--   max_tokens=N             max_tokens of each request (default 128)
--   stream=true|false        SSE streaming (default true)
--   key=TOKEN                sent as "Authorization: Bearer TOKEN" (redacted in JSON reports)
--   seed=N                   random seed, so a mix can be replayed (default: per thread)
local models, total_weight = {}, 0
local prompts = {
  "Explain coordinated omission in one paragraph.",
  "Write a haiku about latency.",
  "List three reasons a p99 can hide a stall.",
  "Summarise the HTTP/1.1 keep-alive rules.",
  "What is a percentile spectrum?",
}
local max_tokens, stream = 128, true

local function add_model(name, weight)
  models[#models + 1] = { name = name, weight = weight }
  total_weight = total_weight + weight
end

local function pick_model()
  local r = math.random() * total_weight
  for _, m in ipairs(models) do
    r = r - m.weight
    if r <= 0 then return m.name end
  end
  return models[#models].name
end

function init(args)
  local seed = nil
  for i = 1, #args do
    local k, v = string.match(args[i], "^([%w_]+)=(.*)$")
    if k == "models" then
      for name, w in string.gmatch(v, "([^,:]+):?(%d*%.?%d*)") do
        add_model(name, tonumber(w) or 1)
      end
    elseif k == "max_tokens" then max_tokens = tonumber(v)
    elseif k == "stream" then stream = (v == "true")
    elseif k == "key" then wrk.headers["Authorization"] = "Bearer " .. v
    elseif k == "seed" then seed = tonumber(v)
    elseif k ~= nil or args[i] ~= "" then error("openai_chat.lua: unknown argument " .. args[i])
    end
  end
  if #models == 0 then add_model("gpt-4o-mini", 1) end
  math.randomseed(seed or (os.time() + (id or 0)))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local body = json.encode({
    model = pick_model(),
    stream = stream,
    max_tokens = max_tokens,
    messages = { { role = "user", content = prompts[math.random(#prompts)] } },
  })
  return wrk.format(nil, nil, nil, body)
end
