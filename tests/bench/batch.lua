-- wrk script: POSTs a batch of COUNT identical calls to /v1/batch.
--   wrk ... -s batch.lua URL -- COUNT FUNCTION ARGS_JSON
-- e.g. -- 10 sum_squares '{"n":1000}'. done() prints the same WRK line as
-- call.lua (rps counts batches, not calls).
wrk.method = "POST"
wrk.path = "/v1/batch"
wrk.headers["Content-Type"] = "application/json"

function init(args)
   local count = tonumber(args[1] or "10")
   local fn = args[2] or "sum_squares"
   local fargs = args[3] or '{"n":1000}'
   local call = '{"function":"' .. fn .. '","args":' .. fargs .. '}'
   local calls = {}
   for i = 1, count do
      calls[i] = call
   end
   wrk.body = '{"calls":[' .. table.concat(calls, ",") .. ']}'
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d errors=%d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), summary.requests,
      e.status, e.connect + e.read + e.write + e.timeout))
end
