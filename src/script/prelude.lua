-- ratebench's part of wrk's scripting API that is plain Lua (loaded into every state).
wrk.format = function(method, path, headers, body)
  method = method or wrk.method
  path = path or wrk.path
  headers = headers or wrk.headers
  body = body or wrk.body
  local h = {}
  for name, value in pairs(headers) do h[name] = value end
  if h["Host"] == nil and h["host"] == nil then h["Host"] = wrk.headers["Host"] end
  h["Content-Length"] = nil
  h["content-length"] = nil
  if body then h["Content-Length"] = #body end
  local s = { string.format("%s %s HTTP/1.1", method, path) }
  for name, value in pairs(h) do
    s[#s + 1] = string.format("%s: %s", name, tostring(value))
  end
  s[#s + 1] = ""
  s[#s + 1] = body or ""
  return table.concat(s, "\r\n")
end

-- wrk's default request, as wrk.format() builds it from the wrk table.
wrk.request = function()
  return wrk.format()
end
