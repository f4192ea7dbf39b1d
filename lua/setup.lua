-- Per-thread ids and counters through setup(), thread:set and thread:get in done()
-- (wrk's setup.lua).
local counter = 1
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  requests  = 0
  responses = 0
end

function request()
  requests = requests + 1
  return wrk.request()
end

function response(status, headers, body)
  responses = responses + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local id        = thread:get("id")
    local requests  = thread:get("requests")
    local responses = thread:get("responses")
    print(string.format("thread %d made %d requests and got %d responses", id, requests, responses))
  end
end
