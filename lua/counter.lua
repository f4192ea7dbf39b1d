-- A different path for every request: /0, /1, /2, … per thread (wrk's counter.lua).
--   ratebench -R100 -s lua/counter.lua http://127.0.0.1:8080/
counter = 0

request = function()
  local path = "/" .. counter
  counter = counter + 1
  return wrk.format(nil, path)
end
