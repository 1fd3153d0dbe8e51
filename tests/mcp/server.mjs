// A test MCP server for the gateway's MCP tests, built with the official
// TypeScript SDK (@modelcontextprotocol/sdk) and its streamable HTTP
// transport.  It requires an API key in the X-API-Key header, the
// credential aam-vault injects; without the right key it answers 401.
// It records every request it receives, one JSON line each (method,
// JSON-RPC method, tool name, whether the key was right — never the key),
// so a test can see what reached it.
//
//   MCP_PORT=N MCP_KEY_FILE=FILE MCP_RECORD=FILE node server.mjs
//
// Tools: search {query}, delete_page {page}, lookup {id}, whoami (echoes
// the key it received, so a test can check the answer is scrubbed).
// Resource docs://public/readme; prompt summarize {topic}.
import { randomUUID } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import http from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const key = readFileSync(process.env.MCP_KEY_FILE, 'utf8').split(/\r?\n/)[0];
const recordFile = process.env.MCP_RECORD;
const port = Number(process.env.MCP_PORT || 0);

function record(entry) {
  if (recordFile) appendFileSync(recordFile, JSON.stringify(entry) + '\n');
}

function newServer(receivedKey) {
  const server = new McpServer({ name: 'aam-test-mcp', version: '1.0.0' });
  server.registerTool('search', {
    description: 'Search the documentation.',
    inputSchema: { query: z.string() },
  }, async ({ query }) => ({ content: [{ type: 'text', text: `3 pages match "${query}"` }] }));
  server.registerTool('delete_page', {
    description: 'Delete a page.',
    inputSchema: { page: z.string() },
  }, async ({ page }) => ({ content: [{ type: 'text', text: `deleted ${page}` }] }));
  server.registerTool('lookup', {
    description: 'A page by number.',
    inputSchema: { id: z.number() },
  }, async ({ id }) => ({ content: [{ type: 'text', text: `page ${id}` }] }));
  server.registerTool('whoami', {
    description: 'The credential this server received (a test of scrubbing).',
  }, async () => ({ content: [{ type: 'text', text: `key=${receivedKey()}` }] }));
  server.registerResource('readme', 'docs://public/readme', { mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, text: 'hello from the docs' }] }));
  server.registerPrompt('summarize', {
    description: 'Summarize a topic.',
    argsSchema: { topic: z.string() },
  }, ({ topic }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Summarize ${topic}` } }] }));
  return server;
}

const sessions = new Map();
let lastKey = '';

const httpServer = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const raw = Buffer.concat(chunks).toString('utf8');
  let body;
  try { body = raw ? JSON.parse(raw) : undefined; } catch { body = undefined; }
  const presented = req.headers['x-api-key'];
  const auth = presented === undefined ? 'missing' : presented === key ? 'ok' : 'wrong';
  record({
    method: req.method,
    path: req.url,
    auth,
    session: req.headers['mcp-session-id'] ? 'present' : 'absent',
    protocol: req.headers['mcp-protocol-version'] || null,
    rpc: body && body.method ? body.method : null,
    tool: body && body.params && body.params.name ? body.params.name : null,
    arguments: body && body.params && body.params.arguments ? body.params.arguments : null,
  });
  if (auth !== 'ok') {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'invalid API key' }));
    return;
  }
  lastKey = presented;
  const sid = req.headers['mcp-session-id'];
  let transport = sid ? sessions.get(sid) : undefined;
  if (!transport) {
    if (sid || req.method !== 'POST' || !isInitializeRequest(body)) {
      res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'no session' } }));
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId); };
    await newServer(() => lastKey).connect(transport);
  }
  await transport.handleRequest(req, res, body);
});

httpServer.listen(port, '127.0.0.1', () => {
  console.log(`aam-test-mcp listening on 127.0.0.1:${httpServer.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { httpServer.close(); process.exit(0); });
