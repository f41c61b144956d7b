-- wrk script for the bench's load(): sends, in order, the raw HTTP requests of a file that Node wrote
-- beforehand (each one "<byte length>\n<request>"), one thread, every request once. Signing and
-- encoding happen before the clock starts, so the load costs the servers' process nothing.
-- When the file runs out before the duration does, the thread stops and the time it ran is reported,
-- so the rate stays right. done() prints one JSON line for Node to read.
local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME: comparable with Date.now() in Node
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local requests = {}
local count = 0
local next_index = 1

function init(args)
  local file = assert(io.open(args[1], "rb"))
  while true do
    local len = file:read("*l")
    if not len then break end
    count = count + 1
    requests[count] = file:read(tonumber(len))
  end
  file:close()
end

function request()
  if next_index == 1 then
    started_at = now_ms()
  end
  if next_index > count then
    if not stopped_at then
      stopped_at = now_ms()
    end
    wrk.thread:stop()
    -- wrk writes what request() returns before it sees the stop; an empty request sends nothing.
    return ""
  end
  local r = requests[next_index]
  next_index = next_index + 1
  sent = next_index - 1
  return r
end

function done(summary, latency, _)
  local t = threads[1]
  local started = t:get("started_at") or 0
  local stopped = t:get("stopped_at")
  io.write(string.format(
    '\n{"requests":%d,"durationUs":%d,"startedAt":%.3f,"stoppedAt":%.3f,"exhausted":%s,"sent":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, started, stopped or 0, stopped and "true" or "false",
    t:get("sent") or 0, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
