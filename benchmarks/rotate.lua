-- wrk script: rotate through the host's request shapes, read from a file of paths.
--   wrk -c64 -d10s -s benchmarks/rotate.lua http://127.0.0.1:PORT -- paths.txt [lists|any] [offset]
-- Each line of paths.txt is one request path (explain, or guess with 1..10 `words`).
-- With "lists" (the default) a reply that is not a 200 JSON list counts as invalid,
-- as the host would count it; "any" counts only non-200 replies (trivial routes).
-- Every wrk thread starts at a different offset, so threads do not replay in lockstep;
-- `offset` (default 0) shifts them all: the benchmark starts each run where the previous
-- run against the same server stopped, so a server never sees a request twice in a row
-- of runs (hatbot remembers recent rounds of guesses; a repeat would be a free answer).
-- At the end it prints one JSON line (prefixed "JSON ") with the counts and the
-- latency percentiles in microseconds.

local paths = {}
local counter = 1
local threads = {}
local bad = 0
local lists = true

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1] or "paths.txt", "r"))
  for line in file:lines() do
    if #line > 0 then paths[#paths + 1] = line end
  end
  file:close()
  lists = (args[2] or "lists") ~= "any"
  local offset = tonumber(args[3] or "0")
  counter = (offset + ((id or 1) - 1) * 7919) % #paths + 1
  bad = 0
end

function request()
  local path = paths[counter]
  counter = counter % #paths + 1
  return wrk.format("GET", path)
end

function response(status, headers, body)
  -- A reply the host would count as a lost turn: not 200, or not a JSON list.
  if status ~= 200 or (lists and string.sub(body, 1, 1) ~= "[") then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local invalid = 0
  for _, thread in ipairs(threads) do
    invalid = invalid + (thread:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "bytes": %d, "invalid": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, ' ..
    '"timeouts": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "stdev_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, invalid,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, latency.stdev))
end
