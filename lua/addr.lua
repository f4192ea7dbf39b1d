-- Give each thread an address that accepts connections (wrk's addr.lua): wrk.lookup the
-- URL's host and port, wrk.connect each address, keep the reachable ones.
local addrs = nil

function setup(thread)
  if not addrs then
    addrs = {}
    for _, addr in ipairs(wrk.lookup(wrk.host, wrk.port or "http")) do
      if wrk.connect(addr) then
        addrs[#addrs + 1] = addr
      end
    end
    if #addrs == 0 then error("no address of " .. wrk.host .. " accepts connections") end
  end
  local index = math.random(#addrs)
  thread.addr = addrs[index]
  print("thread uses " .. tostring(thread.addr))
end
