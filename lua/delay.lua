-- A random think time of 10–50 ms per connection after each response (wrk's delay.lua).
-- In ratebench the schedule does not wait for it: requests due meanwhile go to other
-- connections, or queue (and their wait is in the corrected latency).
function delay()
  return math.random(10, 50)
end
