-- bench/ballot.lua - wrk script for the durable ballot POSTs (bench/run.sh).
--
-- Every POST carries a fresh form token ("ft"): the collector answers a
-- replayed one with 409. run.sh makes them beforehand (bench/prep.py, the
-- construction of collector/guard.c) and passes the file in BALLOT_TOKENS,
-- one token a line; BALLOT_FIELDS holds the answers (urlencoded). Each
-- request takes the next token; when they run out, a request goes without one
-- (400) and is counted, so a run that outgrows the file shows it.
-- Every response that is not 303 (the ballot committed) is counted by status
-- and printed by done(), with the figures run.sh reads.
local tokens, n, next_token = {}, 0, 1
local fields = os.getenv("BALLOT_FIELDS") or ""
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
non303, statuses = 0, ""
local by_status = {}
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path = os.getenv("BALLOT_TOKENS")
   for line in io.lines(path) do
      n = n + 1
      tokens[n] = line
   end
end

function request()
   local body = fields
   if next_token <= n then
      body = fields .. "&ft=" .. tokens[next_token]
      next_token = next_token + 1
   end
   return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, body)
   if status ~= 303 then
      non303 = non303 + 1
      by_status[status] = (by_status[status] or 0) + 1
      local parts = {}
      for s, c in pairs(by_status) do parts[#parts + 1] = s .. ":" .. c end
      statuses = table.concat(parts, ",")
   end
end

function done(summary, latency, requests)
   local bad, st = 0, {}
   for _, t in ipairs(threads) do
      bad = bad + t:get("non303")
      local s = t:get("statuses")
      if s ~= "" then st[#st + 1] = s end
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f non303=%d statuses=%s " ..
      "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, bad,
      #st > 0 and table.concat(st, ",") or "-", e.connect, e.read, e.write, e.timeout))
end
