-- wrk script for `bench_serving.py http`: POST /v1/edit with a different prompt, project and user
-- on every request (no cache can help, and users spread over the A/B arms), then one JSON line with
-- what the table needs. wrk calls request() per request on each of its threads.
local prompts = {"golden hour", "Morocco", "make it moodier", "cool morning in the mountains", "film noir",
                 "lush greens", "faded summer polaroid", "teal and orange blockbuster", "soft pastel wedding",
                 "Tokyo streets at night", "bleach bypass", "warm autumn forest"}
local counter = 0
local token = os.getenv("TONEFLOW_SERVE_TOKEN")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

request = function()
  counter = counter + 1
  local body = string.format('{"prompt": "%s %d", "project_id": "p-%d", "user_id": "u-%d"}',
                             prompts[counter % #prompts + 1], counter, counter, counter % 1000)
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
