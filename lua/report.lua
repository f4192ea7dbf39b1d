-- A report of its own at the end, from done() (wrk's report.lua): percentiles of the
-- corrected latency, in microseconds, and the request totals.
--   ratebench -R100 -s lua/report.lua http://127.0.0.1:8080/
done = function(summary, latency, requests)
  io.write("------------------------------\n")
  for _, p in pairs({ 50, 90, 99, 99.999 }) do
    io.write(string.format("%g%%,%d\n", p, latency:percentile(p)))
  end
  io.write(string.format("requests,%d\n", summary.requests))
  io.write(string.format("errors,%d\n", summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.status + summary.errors.timeout))
  io.write(string.format("latency.max,%d\n", latency.max))
end
