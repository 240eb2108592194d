-- wrk script for intake_bench.py: posts pre-signed CRM events read from a file, each thread its own share,
-- so that a run of new events never posts one twice. Prints one JSON line of figures at the end.
-- usage: wrk -s intake_requests.lua URL -- FILE PATH
-- FILE lines: webhook-id <TAB> webhook-timestamp <TAB> webhook-signature <TAB> body

local threads = {}
local counter = 0

function setup(thread)
  thread:set("number", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, path = args[1], args[2]
  local total_threads = tonumber(os.getenv("WRK_THREADS") or "1")
  requests = {}
  local line_number = 0
  for line in io.lines(file) do
    if line_number % total_threads == number then
      local id, timestamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      table.insert(requests, wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = id,
        ["webhook-timestamp"] = timestamp,
        ["webhook-signature"] = signature,
      }, body))
    end
    line_number = line_number + 1
  end
  next_request = 0
end

function request()
  next_request = next_request + 1
  if next_request > #requests then
    next_request = 1 -- out of events: wraps around (the bench makes enough that this never happens)
  end
  return requests[next_request]
end

function done(summary, latency, requests_)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
