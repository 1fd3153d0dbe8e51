// Cedar side of the AAM policy benchmark.  policy_bench --emit-cedar DIR
// writes DIR/policies-N.cedar (the same policy sets, in Cedar) and
// DIR/requests-N.json (the same requests with the expected decisions);
// this script decides them with @cedar-policy/cedar-wasm, the policy set
// parsed once up front (preparsePolicySet + statefulIsAuthorized), checks
// every decision against the expected one, and prints the same figures as
// the C benchmark.
//
//   node bench.mjs DIR [SIZES] [SECONDS]     e.g. node bench.mjs /tmp/x 10,1000,10000 3
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const cedar = require('@cedar-policy/cedar-wasm/nodejs');

const dir = process.argv[2];
const sizes = (process.argv[3] || '10,1000,10000').split(',').map(Number);
const seconds = Number(process.argv[4] || 3);
if (!dir) {
  console.error('usage: node bench.mjs DIR [SIZES] [SECONDS]');
  process.exit(2);
}

function call(q, id) {
  return {
    principal: { type: 'Workload', id: q.p },
    action: { type: 'Action', id: q.a },
    resource: { type: q.t, id: q.r },
    context: {},
    entities: [],
    preparsedPolicySetId: id,
  };
}

for (const n of sizes) {
  const text = readFileSync(`${dir}/policies-${n}.cedar`, 'utf8');
  const reqs = JSON.parse(readFileSync(`${dir}/requests-${n}.json`, 'utf8'));
  const id = `set-${n}`;
  let t0 = process.hrtime.bigint();
  const parsed = cedar.preparsePolicySet(id, { staticPolicies: text });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (parsed.type !== 'success') {
    console.error(JSON.stringify(parsed.errors).slice(0, 500));
    process.exit(1);
  }
  const calls = reqs.map((q) => call(q, id));
  const decide = (c) => {
    const a = cedar.statefulIsAuthorized(c);
    if (a.type !== 'success') throw new Error(JSON.stringify(a.errors));
    return a.response.decision === 'allow';
  };
  // Correctness first, on every request (bounded by time for the big sets).
  let checked = 0;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  for (let i = 0; i < calls.length && process.hrtime.bigint() < deadline; i++) {
    if (decide(calls[i]) !== reqs[i].allow) {
      console.error(`cedar disagrees on request ${i}: ${JSON.stringify(reqs[i])}`);
      process.exit(1);
    }
    checked++;
  }
  // Throughput for SECONDS, then per-call latency for SECONDS.
  let done = 0;
  t0 = process.hrtime.bigint();
  let end = t0 + BigInt(Math.round(seconds * 1e9));
  let now = t0;
  while (now < end) {
    for (let k = 0; k < 64; k++) decide(calls[(done + k) % calls.length]);
    done += 64;
    now = process.hrtime.bigint();
  }
  const perS = done / (Number(now - t0) / 1e9);
  const lat = [];
  end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  for (let i = 0; process.hrtime.bigint() < end; i++) {
    const a = process.hrtime.bigint();
    decide(calls[i % calls.length]);
    lat.push(Number(process.hrtime.bigint() - a));
  }
  lat.sort((x, y) => x - y);
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor((lat.length * p) / 1000))];
  console.log(
    `cedar  policies=${String(n).padEnd(6)} decisions/s=${perS.toFixed(0).padEnd(10)} ` +
      `p50_ns=${String(pct(500)).padEnd(5)} p99_ns=${String(pct(990)).padEnd(5)} ` +
      `p999_ns=${String(pct(999)).padEnd(6)} max_ns=${lat[lat.length - 1]} ` +
      `load_ms=${loadMs.toFixed(1)} checked=${checked} (${4 * n} Cedar policies)`,
  );
}
