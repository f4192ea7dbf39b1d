-- Three requests in one string, sent in order on one connection (wrk's pipeline.lua).
-- Each response is counted; the last one ends the scheduled request.
init = function(args)
  local r = {}
  r[1] = wrk.format(nil, "/?foo")
  r[2] = wrk.format(nil, "/?bar")
  r[3] = wrk.format(nil, "/?baz")
  req = table.concat(r)
end

request = function()
  return req
end
