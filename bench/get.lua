-- bench/get.lua - wrk script for the GET runs (bench/run.sh): the requests
-- are wrk's own (no Lua per request, so wrk stays as fast as it can be);
-- done() prints one machine-readable line with the figures run.sh reads.
-- A response that is not 2xx/3xx, or a socket error, is counted and printed.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f bad_status=%d " ..
      "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d bytes=%d\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status,
      e.connect, e.read, e.write, e.timeout, summary.bytes))
end
