// The official MCP client (StreamableHTTPClientTransport) through the
// aam MCP gateway to the test MCP server (server.mjs), which requires an
// API key the client never has: aam-vault injects it.  Run by the C
// integration tests (tests/integration/tools_mcp_check.c, and
// tools_gateway_check.c against the aam-gateway daemon), which start
// every process and pass:
//
//   AAM_MCP_URL       the gateway's /mcp URL
//   AAM_MCP_HEADERS   JSON object of headers the client sends (its identity)
//   AAM_MCP_RECORD    the test server's request log
//   AAM_MCP_KEY_FILE  the upstream key (only to prove it never shows up)
//   AAM_MCP_POLICY    the name of the policy that denies delete_page
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const url = new URL(process.env.AAM_MCP_URL);
const headers = JSON.parse(process.env.AAM_MCP_HEADERS || '{}');
const key = readFileSync(process.env.AAM_MCP_KEY_FILE, 'utf8').split(/\r?\n/)[0];
const policy = process.env.AAM_MCP_POLICY;

// Every answer the client got, to search for the key at the end.
const seen = [];
let client;
let transport;

function upstream() {
  return readFileSync(process.env.AAM_MCP_RECORD, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

function calls(tool) {
  return upstream().filter((r) => r.rpc === 'tools/call' && r.tool === tool);
}

before(async () => {
  transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  client = new Client({ name: 'aam-e2e', version: '1.0.0' });
  await client.connect(transport);
  assert.ok(transport.sessionId, 'the gateway issued an Mcp-Session-Id');
});

after(async () => {
  await transport.terminateSession();
  await client.close();
});

test('tools/list shows only the tools the policy allows', async () => {
  const r = await client.listTools();
  seen.push(r);
  const names = r.tools.map((t) => t.name);
  assert.deepEqual(names, ['docs__search', 'docs__lookup', 'docs__whoami']);
  assert.equal(r.tools[0].inputSchema.type, 'object');
});

test('an allowed call succeeds and the upstream saw the injected key', async () => {
  const before = calls('search').length;
  const r = await client.callTool({ name: 'docs__search', arguments: { query: 'budget' } });
  seen.push(r);
  assert.equal(r.content[0].text, '3 pages match "budget"');
  const after = calls('search');
  assert.equal(after.length, before + 1);
  assert.equal(after[after.length - 1].auth, 'ok');
  assert.deepEqual(after[after.length - 1].arguments, { query: 'budget' });
});

test('a denied call gets a JSON-RPC error naming the policy, and never reaches the upstream', async () => {
  await assert.rejects(
    client.callTool({ name: 'docs__delete_page', arguments: { page: 'home' } }),
    (err) => {
      seen.push(String(err));
      assert.equal(err.code, -32010);
      assert.match(err.message, new RegExp(`denied by policy ${policy}`));
      assert.equal(err.data.reason, 'explicit_deny');
      assert.equal(err.data.policy, policy);
      return true;
    });
  assert.equal(calls('delete_page').length, 0);
});

test('conditions on arguments decide each call', async () => {
  await assert.rejects(client.callTool({ name: 'docs__lookup', arguments: { id: 500 } }),
    (err) => err.code === -32010 && err.data.reason === 'condition_failed');
  const r = await client.callTool({ name: 'docs__lookup', arguments: { id: 5 } });
  seen.push(r);
  assert.equal(r.content[0].text, 'page 5');
  assert.equal(calls('lookup').length, 1);
});

test('unknown tools are refused by the gateway', async () => {
  await assert.rejects(client.callTool({ name: 'nope__search', arguments: {} }),
    (err) => err.code === -32602);
  await assert.rejects(client.callTool({ name: 'docs__missing', arguments: {} }),
    (err) => err.code === -32010);
  assert.equal(calls('missing').length, 0);
});

test('resources and prompts get the same treatment', async () => {
  const res = await client.listResources();
  seen.push(res);
  assert.deepEqual(res.resources.map((r) => r.uri), ['docs://public/readme']);
  const read = await client.readResource({ uri: 'docs://public/readme' });
  seen.push(read);
  assert.equal(read.contents[0].text, 'hello from the docs');
  const prompts = await client.listPrompts();
  seen.push(prompts);
  assert.deepEqual(prompts.prompts.map((p) => p.name), ['docs__summarize']);
  const p = await client.getPrompt({ name: 'docs__summarize', arguments: { topic: 'q3' } });
  seen.push(p);
  assert.equal(p.messages[0].content.text, 'Summarize q3');
});

test('the client never sees the key, even when the upstream echoes it', async () => {
  const r = await client.callTool({ name: 'docs__whoami', arguments: {} });
  seen.push(r);
  assert.match(r.content[0].text, /\[REDACTED\]/);
  const everything = JSON.stringify(seen);
  assert.ok(!everything.includes(key), 'the key reached the client');
  // The upstream did receive it on every request the gateway sent.
  assert.ok(upstream().every((rec) => rec.auth === 'ok'));
});
