// Shared by the SDK end-to-end tests (openai_sdk.test.mjs,
// anthropic_sdk.test.mjs, ../mcp/sidecar.test.mjs): starts the aam-e2e-gw-stack driver
// ($AAM_E2E_GW_STACK, tests/e2e/gw_stack_driver.c), which brings up
// aam-vault (SoftHSM2) + aam-attest + aam-mock-provider (requiring the
// demo provider key) + aam-gateway + the aam-agent sidecar, prints its
// coordinates as one JSON line and tears everything down when its stdin
// closes.  Also: the demo provider key (to prove it never reaches a
// client), the mock's request counters, and aamctl runs.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const driverBin = process.env.AAM_E2E_GW_STACK;

// ARGS are the driver's options (`--mcp` adds the test MCP server and its catalogue).
export async function startStack(args = []) {
  const child = spawn(driverBin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const first = new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the gateway stack driver exited with ${code}`)));
  });
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error('the stack did not start within 150 s')), 150_000).unref(),
  );
  try {
    const line = await Promise.race([first, timeout]);
    const info = JSON.parse(line);
    info.providerKey = readFileSync(info.provider_key_file, 'utf8').trim();
    return { child, info };
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
}

export async function stopStack(child) {
  if (!child || child.exitCode !== null) return child?.exitCode ?? 0;
  const exited = once(child, 'exit');
  child.stdin.end();
  const [code] = await exited;
  return code;
}

// The good mock's counters: {"requests":N, ...per path}.
export async function mockStats(info) {
  const r = await fetch(info.mock_stats_url);
  return r.json();
}

// The good mock's last request: {"method","path","query","headers","body"}.
export async function mockLast(info) {
  const r = await fetch(info.mock_last_url);
  return r.json();
}

export function totalRequests(stats) {
  return typeof stats.requests === 'number' ? stats.requests : stats.total;
}

export function aamctl(info, ...args) {
  return run(info.aamctl, ['-c', info.config, ...args], { timeout: 60_000 });
}

// Every string the client could see: headers and body.
export async function rawText(response) {
  const headers = [...response.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
  const body = await response.text();
  return { headers, body, all: `${headers}\n\n${body}` };
}

// Asserts that S does not contain the provider key, nor its distinctive part.
export function assertNoKey(assert, info, s, what) {
  assert.equal(typeof s, 'string');
  assert.ok(info.providerKey.length > 20);
  assert.ok(!s.includes(info.providerKey), `${what} contains the provider key`);
  assert.ok(!s.includes(info.providerKey.slice(8)), `${what} contains part of the provider key`);
}
