-- bench/ballot.lua - wrk script for the durable ballot POSTs (bench/run.sh).
--
-- Every POST carries a fresh form token ("ft"): the collector answers a
-- replayed one with 409. run.sh makes them beforehand (bench/prep.py, the
-- construction of collector/guard.c) and passes the file in BALLOT_TOKENS,
-- one token a line; BALLOT_FIELDS holds the answers (urlencoded). Each
-- request takes the next token; when they run out, a request goes without one
-- (400) and is counted, so a run that outgrows the file shows it.
--
-- wrk shares the machine with the collector, so this script stays cheap: the
-- request up to the token is formatted once (tokens all have one length), and
-- there is no response() hook (with one, wrk hands every response's headers
-- to Lua). Answers of 400 and above are counted by wrk itself (non303 in the
-- RESULT line); a 2xx or another 3xx instead of 303 would not be, but then
-- the ballots in the database fall short of the answers wrk saw, and run.sh
-- reports the mismatch.
local tokens, n, next_token = {}, 0, 1
local fields = os.getenv("BALLOT_FIELDS") or ""
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local head, plain

function init(args)
   for line in io.lines(os.getenv("BALLOT_TOKENS")) do
      n = n + 1
      tokens[n] = line
   end
   plain = wrk.format("POST", nil, headers, fields)
   if n > 0 then
      local first = wrk.format("POST", nil, headers, fields .. "&ft=" .. tokens[1])
      head = first:sub(1, #first - #tokens[1])
   end
end

function request()
   local t = tokens[next_token]
   if not t then
      return plain
   end
   next_token = next_token + 1
   if #t == #tokens[1] then
      return head .. t
   end
   return wrk.format("POST", nil, headers, fields .. "&ft=" .. t)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f non303=%d statuses=%s " ..
      "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status,
      e.status > 0 and "4xx/5xx" or "-", e.connect, e.read, e.write, e.timeout))
end
