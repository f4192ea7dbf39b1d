-- Take a token from the first response and send it with every later request
-- (wrk's auth.lua). The first response's X-Token header, or its body, is the token.
--   ratebench -R100 -s lua/auth.lua http://127.0.0.1:8080/login
token = nil
local path = "/authenticate"

request = function()
  return wrk.format("GET", path)
end

response = function(status, headers, body)
  if not token and status == 200 then
    token = headers["x-token"] or body
    path = "/resource"
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end
