-- wrk script: the DPoP path, POST /v1/chat/completions straight to
-- aam-gateway with `Authorization: DPoP <token>` and a pre-generated,
-- never reused DPoP proof per request (make_proofs.mjs: line 1 the token,
-- then one proof per line).  Thread i of k takes every k-th proof starting
-- at i, so no proof is sent twice; when a thread runs out it reuses its
-- proofs, which the gateway refuses as replays (401) -- counted as non200,
-- so a run with too few proofs shows it.
--   AAM_BENCH_PROOFS  the proofs file
--   AAM_BENCH_MODEL   the route
local file = os.getenv("AAM_BENCH_PROOFS")
local model = os.getenv("AAM_BENCH_MODEL") or "mock-gpt"
local body = '{"model":"' .. model .. '","max_tokens":16,'
  .. '"messages":[{"role":"user","content":"Benchmark request: say hi"}]}'

local threads = {}
local nthreads = 0
function setup(thread)
  thread:set("index", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

local token, proofs, next_i = nil, {}, 1
function init(args)
  bad = 0
  unauth = 0
  local k = tonumber(os.getenv("AAM_BENCH_THREADS") or "1")
  local line_no = 0
  for line in io.lines(file) do
    if line_no == 0 then
      token = line
    elseif (line_no - 1) % k == index then
      proofs[#proofs + 1] = line
    end
    line_no = line_no + 1
  end
end

function request()
  local p = proofs[next_i]
  next_i = next_i + 1
  if next_i > #proofs then
    next_i = 1
  end
  return wrk.format("POST", "/v1/chat/completions", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "DPoP " .. token,
    ["DPoP"] = p,
  }, body)
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
