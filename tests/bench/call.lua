-- wrk script: POSTs one call to /v1/calls.
--   wrk ... -s call.lua URL -- FUNCTION ARGS_JSON
-- e.g. -- sum_squares '{"n":1000}'. done() prints one machine-readable line:
--   WRK rps=... p50_us=... p99_us=... requests=... non2xx=... errors=...
wrk.method = "POST"
wrk.path = "/v1/calls"
wrk.headers["Content-Type"] = "application/json"

function init(args)
   local fn = args[1] or "sum_squares"
   local fargs = args[2] or '{"n":1000}'
   wrk.body = '{"function":"' .. fn .. '","args":' .. fargs .. '}'
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d errors=%d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), summary.requests,
      e.status, e.connect + e.read + e.write + e.timeout))
end
