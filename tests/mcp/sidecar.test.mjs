// The official MCP client (@modelcontextprotocol/sdk, StreamableHTTPClientTransport)
// through the whole agent path, every piece a real process on loopback:
//
//   SDK client -> aam-agent sidecar (DPoP, key in SoftHSM2; no virtual key)
//              -> aam-gateway /mcp (authn, policy, audit)
//              -> aam-vault INJECT (the key, in SoftHSM2, as X-API-Key)
//              -> tests/mcp/server.mjs (an SDK-built MCP server; 401 without the key)
//
// The stack comes from $AAM_E2E_GW_STACK --mcp (tests/e2e/gw_stack_driver.c),
// which also writes the gateway's tool catalogue (gateway.tools) and gives
// the sidecar's workload the policy tests/mcp/docs-reader.yaml.  The SDK
// client's checks are those of e2e.test.mjs (tools/list shows only allowed
// tools; an allowed call succeeds and the upstream saw the injected key; a
// denied call gets a JSON-RPC error naming the policy; the client never
// sees the key), run here with the sidecar's URL + "/mcp" as the only
// thing the client is given: no header, no key.
//
// Then, with plain fetch through the sidecar: the raw bytes of an answer
// hold no key, GET /mcp (the server-to-client SSE stream) stays open, and
// DELETE /mcp ends the session (the stream closes, the id is refused).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { assertNoKey, driverBin, startStack, stopStack } from '../e2e/gw_stack.mjs';

const run = promisify(execFile);

const skip = !driverBin
  ? 'AAM_E2E_GW_STACK not set'
  : !process.env.AAM_NODE_BIN
    ? 'AAM_NODE_BIN not set'
    : false;

let driver = null;
let info = null;

const mcpUrl = () => `${info.sidecar_url}/mcp`;

before(async () => {
  if (skip) return;
  ({ child: driver, info } = await startStack(['--mcp']));
});

after(async () => {
  if (!driver) return;
  assert.equal(await stopStack(driver), 0, 'the stack driver shut down cleanly');
});

test('the SDK client through the sidecar: e2e.test.mjs', { skip }, async () => {
  const script = fileURLToPath(new URL('./e2e.test.mjs', import.meta.url));
  // A test process of its own, not a child reporting to this runner.
  const { NODE_TEST_CONTEXT: _, ...parentEnv } = process.env;
  const env = {
    ...parentEnv,
    AAM_MCP_URL: mcpUrl(),
    AAM_MCP_HEADERS: '{}',
    AAM_MCP_RECORD: info.mcp.record,
    AAM_MCP_KEY_FILE: info.provider_key_file,
    AAM_MCP_POLICY: info.mcp.policy,
  };
  try {
    const { stdout } = await run(process.env.AAM_NODE_BIN,
      ['--test', '--test-reporter=spec', script], { env, timeout: 120_000 });
    // Each of its tests ran and passed (none skipped, none left out).
    assert.match(stdout, /ℹ pass 7\b/, stdout);
    assert.match(stdout, /ℹ fail 0\b/, stdout);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    assert.fail(`the SDK client's checks failed:\n${err.stdout}\n${err.stderr}`);
  }
});

// A session of our own, opened with plain fetch through the sidecar.
async function rawSession() {
  const post = (body, sid) => fetch(mcpUrl(), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } : {}),
    },
    body: JSON.stringify(body),
  });
  const init = await post({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
  assert.equal(init.status, 200);
  const sid = init.headers.get('mcp-session-id');
  assert.ok(sid);
  await init.text();
  const note = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, sid);
  assert.equal(note.status, 202);
  return { sid, post };
}

// Reads from READER until TEXT has arrived or MS passed; what was read.
async function readUntil(reader, text, ms) {
  const dec = new TextDecoder();
  let got = '';
  const deadline = Date.now() + ms;
  while (!got.includes(text) && Date.now() < deadline) {
    const r = await Promise.race([
      reader.read(),
      new Promise((resolve) => setTimeout(() => resolve({ timeout: true }), deadline - Date.now())),
    ]);
    if (r.timeout || r.done) break;
    got += dec.decode(r.value, { stream: true });
  }
  return got;
}

test('GET /mcp: the server-to-client stream stays open; DELETE /mcp ends the session', { skip }, async () => {
  const { sid, post } = await rawSession();
  const stream = await fetch(mcpUrl(), {
    headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
  });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get('content-type'), /^text\/event-stream/);
  const reader = stream.body.getReader();
  assert.match(await readUntil(reader, 'stream open', 10_000), /^: stream open\n\n/);
  // Still open a while later: a read is pending, not done.
  const pending = reader.read();
  const state = await Promise.race([
    pending.then((r) => (r.done ? 'ended' : 'data')),
    new Promise((resolve) => setTimeout(() => resolve('open'), 2_500)),
  ]);
  assert.equal(state, 'open', 'the stream ended or sent data on its own');
  // The session works alongside its stream.
  const ping = await post({ jsonrpc: '2.0', id: 2, method: 'ping' }, sid);
  assert.equal(ping.status, 200);
  assert.deepEqual((await ping.json()).result, {});
  // Without the session there is no stream.
  const none = await fetch(mcpUrl(), { headers: { accept: 'text/event-stream' } });
  assert.equal(none.status, 400);
  await none.text();

  const del = await fetch(mcpUrl(), { method: 'DELETE', headers: { 'mcp-session-id': sid } });
  assert.equal(del.status, 204);
  // The stream closes once the session is gone ...
  const end = await Promise.race([
    pending.then(async (r) => {
      let x = r;
      while (!x.done) x = await reader.read();
      return 'ended';
    }),
    new Promise((resolve) => setTimeout(() => resolve('still open'), 10_000)),
  ]);
  assert.equal(end, 'ended');
  // ... and the id is refused from then on.
  const after = await post({ jsonrpc: '2.0', id: 3, method: 'ping' }, sid);
  assert.equal(after.status, 404);
  await after.text();
  const again = await fetch(mcpUrl(), { method: 'DELETE', headers: { 'mcp-session-id': sid } });
  assert.equal(again.status, 404);
  await again.text();
});

test('the raw bytes of an answer hold no key, even when the upstream echoes it', { skip }, async () => {
  const { sid, post } = await rawSession();
  const raw = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'docs__whoami', arguments: {} } }, sid);
  const headers = [...raw.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
  const body = await raw.text();
  assert.equal(raw.status, 200);
  assert.match(body, /REDACTED/);
  assertNoKey(assert, info, `${headers}\n\n${body}`, 'a raw answer');
  const del = await fetch(mcpUrl(), { method: 'DELETE', headers: { 'mcp-session-id': sid } });
  assert.equal(del.status, 204);
});
