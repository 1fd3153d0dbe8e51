// The official `openai` npm package, unmodified, through the whole stack:
//
//   OpenAI SDK -> aam-agent sidecar -> aam-gateway -> aam-vault INJECT
//              -> aam-mock-provider (401 unless the vault injected the key)
//
// Only the base URL changes: baseURL = sidecar URL + "/v1".  The SDK
// insists on an API key and sends it as `Authorization: Bearer dummy`;
// the sidecar strips that header (with X-Api-Key, Api-Key, DPoP, ...) and
// puts its own `Authorization: DPoP <token>` and a fresh DPoP proof in its
// place (docs/AGENT.md), so the dummy value never leaves the machine and
// is never checked.  `maxRetries: 0` keeps the SDK's own retries out of
// the error cases, so each status is the gateway's (after the router's
// retries).
//
// Also the migration path: the SDK straight at the gateway with a virtual
// key (apiKey = sk-aam-...), and the same key after `aamctl key revoke`.
//
// The stack comes from $AAM_E2E_GW_STACK (gw_stack_driver.c).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  aamctl,
  assertNoKey,
  driverBin,
  mockLast,
  mockStats,
  rawText,
  startStack,
  stopStack,
  totalRequests,
} from './gw_stack.mjs';

let OpenAI = null;
try {
  ({ default: OpenAI } = await import('openai'));
} catch {
  OpenAI = null;
}

const skip = !OpenAI
  ? 'npm package openai is not installed (run npm ci in tests/e2e)'
  : !driverBin
    ? 'AAM_E2E_GW_STACK not set'
    : false;

let driver = null;
let info = null;
let client = null;

before(async () => {
  if (skip) return;
  ({ child: driver, info } = await startStack());
  client = new OpenAI({
    baseURL: `${info.sidecar_url}/v1`,
    apiKey: 'dummy-the-sidecar-strips-this',
    maxRetries: 0,
    timeout: 60_000,
  });
});

after(async () => {
  if (!driver) return;
  assert.equal(await stopStack(driver), 0, 'the stack driver shut down cleanly');
});

const ask = (model, text, extra = {}) => ({
  model,
  messages: [
    { role: 'system', content: 'You are a test.' },
    { role: 'user', content: text },
  ],
  max_tokens: 64,
  ...extra,
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
    },
  },
};

test('chat completion: the mock answered with the injected key', { skip }, async () => {
  const before = totalRequests(await mockStats(info));
  const { data, response } = await client.chat.completions
    .create(ask(info.routes.openai, 'Say hello to the gateway'))
    .withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.match(data.choices[0].message.content, /^mock reply to: Say hello to the gateway/);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.ok(data.usage.prompt_tokens > 0);
  assert.ok(data.usage.completion_tokens > 0);
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
  assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
  // The mock requires the demo key (401 otherwise): it counted this call.
  const after = totalRequests(await mockStats(info));
  assert.ok(after > before, 'the mock provider saw the request');
  // What reached the upstream: the vault's key, nothing of the agent's credentials.
  const last = await mockLast(info);
  assert.equal(last.path, '/v1/chat/completions');
  assert.equal(last.body.model, 'mock-gpt-4o', 'the route\'s upstream model id');
  assert.equal(last.headers.authorization, `Bearer ${info.providerKey}`);
  assert.equal(last.headers.dpop, undefined, 'no DPoP proof upstream');
  assert.ok(!JSON.stringify(last.headers).includes('dummy-the-sidecar'), 'no SDK placeholder');
  assertNoKey(assert, info, JSON.stringify(data), 'the completion');
  assertNoKey(assert, info, [...response.headers.entries()].join('\n'), 'the headers');
});

test('the mock refuses a request without the key (the control case)', { skip }, async () => {
  const body = JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }] });
  const headers = { 'content-type': 'application/json' };
  let r = await fetch(`${info.mock_url}/v1/chat/completions`, { method: 'POST', headers, body });
  assert.equal(r.status, 401);
  await r.text();
  r = await fetch(`${info.mock_url}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...headers, authorization: 'Bearer dummy-the-sidecar-strips-this' },
    body,
  });
  assert.equal(r.status, 401, 'the SDK placeholder key is not the provider key');
  await r.text();
  r = await fetch(`${info.mock_url}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...headers, authorization: `Bearer ${info.providerKey}` },
    body,
  });
  assert.equal(r.status, 200);
  await r.text();
});

test('raw non-stream response: no provider key in headers or body', { skip }, async () => {
  const response = await client.chat.completions
    .create(ask(info.routes.openai, 'raw bytes please'))
    .asResponse();
  assert.equal(response.status, 200);
  const raw = await rawText(response);
  assert.match(raw.body, /mock reply to: raw bytes please/);
  assertNoKey(assert, info, raw.all, 'the raw response');
});

test('streaming: chunks arrive incrementally', { skip }, async () => {
  const stream = await client.chat.completions.create(
    ask(info.routes.openai, 'Stream a long enough answer to me please', {
      stream: true,
      stream_options: { include_usage: true },
    }),
  );
  const arrivals = [];
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta?.content) {
      text += c.delta.content;
      arrivals.push(performance.now());
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.match(text, /^mock reply to: Stream a long enough answer/);
  assert.equal(finish, 'stop');
  assert.ok(usage && usage.completion_tokens > 0, 'include_usage was honoured');
  assert.ok(arrivals.length >= 3, `several content chunks (${arrivals.length})`);
  // The mock waits chunk_delay_ms between chunks; a proxy that buffered
  // the stream would deliver them all at once.
  const span = arrivals[arrivals.length - 1] - arrivals[0];
  assert.ok(
    span >= info.chunk_delay_ms,
    `first and last chunk ${span.toFixed(0)} ms apart (chunk delay ${info.chunk_delay_ms} ms)`,
  );
  const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]);
  assert.ok(
    gaps.filter((g) => g >= info.chunk_delay_ms * 0.5).length >= 2,
    `chunks spaced by the mock's delay: ${gaps.map((g) => g.toFixed(0)).join(', ')}`,
  );
});

test('streaming without include_usage: no usage chunk reaches the client', { skip }, async () => {
  const stream = await client.chat.completions.create(
    ask(info.routes.openai, 'no usage please', { stream: true }),
  );
  let sawUsage = false;
  let text = '';
  for await (const chunk of stream) {
    if (chunk.usage) sawUsage = true;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.match(text, /^mock reply to: no usage please/);
  assert.equal(sawUsage, false, 'the usage chunk the gateway forced on upstream is stripped');
});

test('raw stream: SSE framing and no provider key', { skip }, async () => {
  const response = await client.chat.completions
    .create(ask(info.routes.openai, 'raw stream', { stream: true }))
    .asResponse();
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const raw = await rawText(response);
  assert.match(raw.body, /^data: \{/m);
  assert.match(raw.body, /data: \[DONE\]\s*$/);
  assertNoKey(assert, info, raw.all, 'the raw stream');
});

test('tool calls, non-stream', { skip }, async () => {
  const data = await client.chat.completions.create(
    ask(info.routes.openai, 'What is the weather in Paris?', { tools: [weatherTool] }),
  );
  const c = data.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.equal(typeof call.id, 'string');
  assert.equal(typeof JSON.parse(call.function.arguments), 'object');
});

test('tool calls, stream (argument fragments reassembled by the SDK)', { skip }, async () => {
  const runner = client.chat.completions.stream(
    ask(info.routes.openai, 'What is the weather in Oslo?', { tools: [weatherTool] }),
  );
  let fragments = 0;
  runner.on('chunk', (chunk) => {
    if (chunk.choices[0]?.delta?.tool_calls?.length) fragments++;
  });
  const final = await runner.finalChatCompletion();
  const c = final.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.tool_calls[0].function.name, 'get_weather');
  assert.equal(typeof JSON.parse(c.message.tool_calls[0].function.arguments), 'object');
  assert.ok(fragments >= 1, 'tool call deltas were streamed');
});

test('crossing route, non-stream: OpenAI client, Anthropic upstream', { skip }, async () => {
  const data = await client.chat.completions.create(
    ask(info.routes.openai_to_anthropic, 'Cross the wires'),
  );
  assert.equal(data.object, 'chat.completion');
  assert.match(data.choices[0].message.content, /^mock reply to: Cross the wires/);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0);
});

test('crossing route, stream: OpenAI client, Anthropic upstream', { skip }, async () => {
  const stream = await client.chat.completions.create(
    ask(info.routes.openai_to_anthropic, 'Cross the streams', {
      stream: true,
      stream_options: { include_usage: true },
    }),
  );
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.match(text, /^mock reply to: Cross the streams/);
  assert.equal(finish, 'stop');
  assert.ok(chunks >= 3);
  assert.ok(usage && usage.completion_tokens > 0);
});

test('crossing route, tool call: Anthropic tool_use becomes tool_calls', { skip }, async () => {
  const data = await client.chat.completions.create(
    ask(info.routes.openai_to_anthropic, 'What is the weather in Rome?', { tools: [weatherTool] }),
  );
  const c = data.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.tool_calls[0].function.name, 'get_weather');
  assert.equal(typeof JSON.parse(c.message.tool_calls[0].function.arguments), 'object');
});

async function expectError(promise, Class, status) {
  try {
    await promise;
  } catch (err) {
    assert.ok(
      err instanceof Class,
      `${err?.constructor?.name} (${err?.status} ${err?.message}) is not a ${Class.name}`,
    );
    assert.equal(err.status, status);
    assert.equal(typeof err.message, 'string');
    assertNoKey(assert, info, `${err.message} ${JSON.stringify(err.error ?? null)}`, 'the error');
    return err;
  }
  assert.fail(`expected ${Class.name}`);
}

test('unknown model: NotFoundError 404', { skip }, async () => {
  const err = await expectError(
    client.chat.completions.create(ask('no-such-route', 'hi')),
    OpenAI.NotFoundError,
    404,
  );
  assert.ok(err.code === null || typeof err.code === 'string');
});

test('policy denial: PermissionDeniedError 403', { skip }, async () => {
  const err = await expectError(
    client.chat.completions.create(ask('forbidden-model', 'hi')),
    OpenAI.PermissionDeniedError,
    403,
  );
  assert.match(err.message, /policy/i);
});

test('upstream 429 after the router retries: RateLimitError', { skip }, async () => {
  await expectError(
    client.chat.completions.create(ask(info.routes.r429, 'hi')),
    OpenAI.RateLimitError,
    429,
  );
});

test('upstream 500 after the router retries: InternalServerError', { skip }, async () => {
  try {
    await client.chat.completions.create(ask(info.routes.r500, 'hi'));
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(err instanceof OpenAI.InternalServerError, `${err?.constructor?.name}`);
    // The gateway answers an upstream failure as 502 (docs/GATEWAY.md) or passes the 500 on.
    assert.ok([500, 502].includes(err.status), `status ${err.status}`);
    assertNoKey(assert, info, `${err.message} ${JSON.stringify(err.error ?? null)}`, 'the error');
  }
});

test('upstream 500 in a stream request: an SDK error, not a broken stream', { skip }, async () => {
  try {
    const stream = await client.chat.completions.create(
      ask(info.routes.r500, 'hi', { stream: true }),
    );
    for await (const _ of stream) {
      // nothing: the request must fail before any chunk
    }
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(err instanceof OpenAI.InternalServerError, `${err?.constructor?.name}`);
    assert.ok([500, 502].includes(err.status), `status ${err.status}`);
  }
});

test('/v1/models lists the routes the policy allows', { skip }, async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes(info.routes.openai), ids.join(','));
  assert.ok(ids.includes(info.routes.openai_to_anthropic));
  assert.ok(!ids.includes('forbidden-model'));
});

// Issue 6: limits per identity and per key on the model path.  A policy's
// `limits: {rpm: 2}` for one workload, and a virtual key's own `--rpm 1`:
// the call past the limit is a RateLimitError (429, code rate_limited)
// with a Retry-After the SDK would honour.
test('rate limits of a policy and of a virtual key: RateLimitError 429', { skip }, async () => {
  const mk = async (...extra) => {
    const { stdout } = await aamctl(info, 'key', 'create', '--owner', 'carol', ...extra);
    return stdout.trim().split('\n')[0];
  };
  const limited = new OpenAI({
    baseURL: `${info.gateway_url}/v1`,
    apiKey: await mk('--workload', 'spiffe://prod/agent/e2e-limited'),
    maxRetries: 0,
  });
  for (let i = 0; i < 2; i++) {
    const data = await limited.chat.completions.create(ask(info.routes.openai, `limited ${i}`));
    assert.match(data.choices[0].message.content, /^mock reply to: limited/);
  }
  const err = await expectError(
    limited.chat.completions.create(ask(info.routes.openai, 'one too many')),
    OpenAI.RateLimitError,
    429,
  );
  assert.equal(err.code ?? err.error?.code, 'rate_limited');
  assert.match(err.message, /rpm/);
  assert.ok(Number(err.headers?.get?.('retry-after') ?? err.headers?.['retry-after']) >= 1);

  // The key's own limit, under a policy without one.
  const keyed = new OpenAI({
    baseURL: `${info.gateway_url}/v1`,
    apiKey: await mk('--workload', 'spiffe://prod/agent/e2e-keyed', '--rpm', '1'),
    maxRetries: 0,
  });
  await keyed.chat.completions.create(ask(info.routes.openai, 'keyed once'));
  await expectError(
    keyed.chat.completions.create(ask(info.routes.openai, 'keyed twice')),
    OpenAI.RateLimitError,
    429,
  );
  // Another workload is not affected by either.
  const data = await client.chat.completions.create(ask(info.routes.openai, 'unlimited'));
  assert.match(data.choices[0].message.content, /^mock reply to: unlimited/);
});

test('virtual key straight at the gateway, then revoked: AuthenticationError 401', { skip }, async () => {
  const vk = new OpenAI({ baseURL: `${info.gateway_url}/v1`, apiKey: info.vkey, maxRetries: 0 });
  const data = await vk.chat.completions.create(ask(info.routes.openai, 'via a virtual key'));
  assert.match(data.choices[0].message.content, /^mock reply to: via a virtual key/);
  const stream = await vk.chat.completions.create(
    ask(info.routes.openai_to_anthropic, 'virtual key stream', { stream: true }),
  );
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.match(text, /^mock reply to: virtual key stream/);

  // A wrong key is refused too.
  const bad = new OpenAI({
    baseURL: `${info.gateway_url}/v1`,
    apiKey: `${info.vkey.slice(0, -4)}AAAA`,
    maxRetries: 0,
  });
  await expectError(
    bad.chat.completions.create(ask(info.routes.openai, 'hi')),
    OpenAI.AuthenticationError,
    401,
  );

  await aamctl(info, 'key', 'revoke', info.vkey_alias);
  const err = await expectError(
    vk.chat.completions.create(ask(info.routes.openai, 'after revocation')),
    OpenAI.AuthenticationError,
    401,
  );
  assert.ok(!err.message.includes(info.vkey), 'the key is not echoed back');
});
