-- Stop the thread after 100 responses (wrk's stop.lua); what was scheduled after that is
-- not sent, and the report says the run was interrupted.
local responses = 0

function response(status, headers, body)
  responses = responses + 1
  if responses >= 100 then
    wrk.thread:stop()
  end
end
