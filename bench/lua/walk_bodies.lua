-- POST each line of a file once, split across wrk's threads; when a thread's share is answered it writes
-- "<ok> <failed> <t_first_request> <t_last_answer>" (CLOCK_MONOTONIC seconds) to OUT_DIR/thread-<id>.txt and stops.
-- Environment: BENCH_BODIES (file, one urlencoded body a line), BENCH_OUT_DIR, BENCH_PATH, BENCH_CONTENT_TYPE,
-- BENCH_THREADS (wrk -t).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local bodies, next_body, ok, failed, t_first, t_last, finished = {}, 1, 0, 0, nil, nil, false
local path = os.getenv("BENCH_PATH")
local headers = { ["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") }

function init(args)
  local threads = tonumber(os.getenv("BENCH_THREADS"))
  local i = 0
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if i % threads == id - 1 then
      bodies[#bodies + 1] = line
    end
    i = i + 1
  end
end

local filler = wrk.format("GET", "/bench-drained") -- a 404, answered and ignored
local calls = 0

function request()
  calls = calls + 1
  if calls == 1 then
    -- wrk calls request() once on the first thread's state before the run, to inspect it, and never sends that
    -- one: hand it (and, on other threads, the first real request) the filler, so no body is lost.
    return filler
  end
  local body = bodies[next_body]
  if body == nil then
    return filler -- keeps the connection busy until the thread stops
  end
  if t_first == nil then t_first = now() end
  next_body = next_body + 1
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if finished or status == 404 then return end
  if status == 200 then ok = ok + 1 else failed = failed + 1 end
  if ok + failed == #bodies then
    finished = true
    t_last = now()
    local f = assert(io.open(os.getenv("BENCH_OUT_DIR") .. "/thread-" .. id .. ".txt", "w"))
    f:write(string.format("%d %d %.6f %.6f\n", ok, failed, t_first, t_last))
    f:close()
    wrk.thread:stop()
  end
end
