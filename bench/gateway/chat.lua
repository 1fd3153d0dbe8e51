-- wrk script: one non-streaming OpenAI chat completion per request.
--   AAM_BENCH_AUTH   the Authorization header value ("" = none)
--   AAM_BENCH_MODEL  the "model" (a gateway route, or the upstream model id)
--   AAM_BENCH_GET    a path: GET it instead (/healthz, /v1/models), no body
-- The body is the same small request for every target, so the mock does the
-- same work whichever path the request took.
local auth = os.getenv("AAM_BENCH_AUTH") or ""
local model = os.getenv("AAM_BENCH_MODEL") or "mock-gpt"
local get = os.getenv("AAM_BENCH_GET") or ""

if auth ~= "" then
  wrk.headers["Authorization"] = auth
end
if get ~= "" then
  wrk.method = "GET"
  wrk.path = get
else
  wrk.method = "POST"
  wrk.path = "/v1/chat/completions"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"model":"' .. model .. '","max_tokens":16,'
    .. '"messages":[{"role":"user","content":"Benchmark request: say hi"}]}'
end

-- Non-2xx answers are counted per thread and summed in done(), so a run
-- that "measured" fast errors is visible.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  unauth = 0
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  end
  if status == 401 then
    unauth = unauth + 1
  end
end

function done(summary, latency, requests)
  local n, u = 0, 0
  for _, t in ipairs(threads) do
    n = n + (t:get("bad") or 0)
    u = u + (t:get("unauth") or 0)
  end
  io.write(string.format("AAM_BENCH non200=%d\n", n))
  io.write(string.format("AAM_BENCH s401=%d\n", u))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("AAM_BENCH p%d_us=%d\n", p, latency:percentile(p)))
  end
end
