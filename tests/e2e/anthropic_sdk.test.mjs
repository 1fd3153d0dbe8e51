// The official `@anthropic-ai/sdk` npm package, unmodified, through the
// whole stack:
//
//   Anthropic SDK -> aam-agent sidecar -> aam-gateway -> aam-vault INJECT
//                 -> aam-mock-provider (401 unless the vault injected the key)
//
// Only the base URL changes: baseURL = the sidecar URL (the SDK adds
// /v1/messages itself).  The SDK sends its placeholder key as X-Api-Key;
// the sidecar strips it and signs the request with DPoP (docs/AGENT.md).
// `maxRetries: 0` keeps the SDK's own retries out of the error cases.
//
// The stack comes from $AAM_E2E_GW_STACK (gw_stack_driver.c).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  assertNoKey,
  driverBin,
  mockLast,
  mockStats,
  rawText,
  startStack,
  stopStack,
  totalRequests,
} from './gw_stack.mjs';

let Anthropic = null;
try {
  ({ default: Anthropic } = await import('@anthropic-ai/sdk'));
} catch {
  Anthropic = null;
}

const skip = !Anthropic
  ? 'npm package @anthropic-ai/sdk is not installed (run npm ci in tests/e2e)'
  : !driverBin
    ? 'AAM_E2E_GW_STACK not set'
    : false;

let driver = null;
let info = null;
let client = null;

before(async () => {
  if (skip) return;
  ({ child: driver, info } = await startStack());
  client = new Anthropic({
    baseURL: info.sidecar_url,
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
  max_tokens: 64,
  system: 'You are a test.',
  messages: [{ role: 'user', content: text }],
  ...extra,
});

const weatherTool = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
  },
};

test('messages.create, non-stream', { skip }, async () => {
  const before = totalRequests(await mockStats(info));
  const { data, response } = await client.messages
    .create(ask(info.routes.anthropic, 'Hello from the Anthropic SDK'))
    .withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.type, 'message');
  assert.equal(data.role, 'assistant');
  assert.equal(data.content[0].type, 'text');
  assert.match(data.content[0].text, /^mock reply to: Hello from the Anthropic SDK/);
  assert.equal(data.stop_reason, 'end_turn');
  assert.ok(data.usage.input_tokens > 0);
  assert.ok(data.usage.output_tokens > 0);
  assert.ok(totalRequests(await mockStats(info)) > before, 'the mock saw the request');
  const last = await mockLast(info);
  assert.equal(last.path, '/v1/messages');
  assert.equal(last.body.model, 'mock-claude-sonnet', 'the route\'s upstream model id');
  assert.equal(last.headers['x-api-key'], info.providerKey, 'the vault injected the key');
  assert.ok(typeof last.headers['anthropic-version'] === 'string');
  assert.equal(last.headers.dpop, undefined, 'no DPoP proof upstream');
  assert.ok(!/^DPoP /i.test(last.headers.authorization ?? ''), 'no agent token upstream');
  assert.ok(!JSON.stringify(last.headers).includes('dummy-the-sidecar'), 'no SDK placeholder');
  assertNoKey(assert, info, JSON.stringify(data), 'the message');
  assertNoKey(assert, info, [...response.headers.entries()].join('\n'), 'the headers');
});

test('raw response: no provider key in headers or body', { skip }, async () => {
  const response = await client.messages.create(ask(info.routes.anthropic, 'raw')).asResponse();
  assert.equal(response.status, 200);
  const raw = await rawText(response);
  assertNoKey(assert, info, raw.all, 'the raw response');
});

test('messages.stream: events arrive incrementally, finalMessage', { skip }, async () => {
  const stream = client.messages.stream(
    ask(info.routes.anthropic, 'Stream me a reply long enough to see chunks'),
  );
  const arrivals = [];
  const types = [];
  let text = '';
  stream.on('text', (delta) => {
    text += delta;
    arrivals.push(performance.now());
  });
  for await (const event of stream) types.push(event.type);
  const final = await stream.finalMessage();
  assert.equal(types[0], 'message_start');
  assert.ok(types.includes('content_block_start'));
  assert.ok(types.includes('content_block_delta'));
  assert.ok(types.includes('content_block_stop'));
  assert.ok(types.includes('message_delta'));
  assert.equal(types[types.length - 1], 'message_stop');
  assert.match(text, /^mock reply to: Stream me a reply long enough/);
  assert.equal(final.content[0].text, text);
  assert.equal(final.stop_reason, 'end_turn');
  assert.ok(final.usage.output_tokens > 0);
  assert.ok(arrivals.length >= 3, `several text deltas (${arrivals.length})`);
  const span = arrivals[arrivals.length - 1] - arrivals[0];
  assert.ok(
    span >= info.chunk_delay_ms,
    `first and last delta ${span.toFixed(0)} ms apart (chunk delay ${info.chunk_delay_ms} ms)`,
  );
});

test('tool_use, non-stream', { skip }, async () => {
  const msg = await client.messages.create(
    ask(info.routes.anthropic, 'What is the weather in Paris?', { tools: [weatherTool] }),
  );
  assert.equal(msg.stop_reason, 'tool_use');
  const block = msg.content.find((b) => b.type === 'tool_use');
  assert.ok(block, JSON.stringify(msg.content));
  assert.equal(block.name, 'get_weather');
  assert.equal(typeof block.id, 'string');
  assert.equal(typeof block.input, 'object');
});

test('tool_use, stream (input_json_delta reassembled by the SDK)', { skip }, async () => {
  const stream = client.messages.stream(
    ask(info.routes.anthropic, 'What is the weather in Oslo?', { tools: [weatherTool] }),
  );
  let jsonDeltas = 0;
  stream.on('inputJson', () => jsonDeltas++);
  const final = await stream.finalMessage();
  assert.equal(final.stop_reason, 'tool_use');
  const block = final.content.find((b) => b.type === 'tool_use');
  assert.equal(block.name, 'get_weather');
  assert.equal(typeof block.input, 'object');
  assert.ok(jsonDeltas >= 1, 'input_json_delta events were streamed');
});

test('crossing route, non-stream: Anthropic client, OpenAI upstream', { skip }, async () => {
  const msg = await client.messages.create(ask(info.routes.anthropic_to_openai, 'Cross over'));
  assert.equal(msg.type, 'message');
  assert.match(msg.content[0].text, /^mock reply to: Cross over/);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);
});

test('crossing route, stream: Anthropic client, OpenAI upstream', { skip }, async () => {
  const stream = client.messages.stream(ask(info.routes.anthropic_to_openai, 'Cross streams'));
  const types = [];
  for await (const event of stream) types.push(event.type);
  const final = await stream.finalMessage();
  assert.equal(types[0], 'message_start');
  assert.equal(types[types.length - 1], 'message_stop');
  assert.match(final.content[0].text, /^mock reply to: Cross streams/);
  assert.equal(final.stop_reason, 'end_turn');
  assert.ok(final.usage.output_tokens > 0);
});

test('crossing route, tool call: OpenAI tool_calls become tool_use', { skip }, async () => {
  const msg = await client.messages.create(
    ask(info.routes.anthropic_to_openai, 'What is the weather in Rome?', { tools: [weatherTool] }),
  );
  assert.equal(msg.stop_reason, 'tool_use');
  const block = msg.content.find((b) => b.type === 'tool_use');
  assert.equal(block?.name, 'get_weather');
  assert.equal(typeof block.input, 'object');
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
    assertNoKey(assert, info, `${err.message} ${JSON.stringify(err.error ?? null)}`, 'the error');
    return err;
  }
  assert.fail(`expected ${Class.name}`);
}

test('errors surface as the SDK error classes', { skip }, async () => {
  const nf = await expectError(
    client.messages.create(ask('no-such-route', 'hi')),
    Anthropic.NotFoundError,
    404,
  );
  assert.equal(nf.error?.type, 'error', 'the Anthropic error shape');
  assert.equal(nf.error?.error?.type, 'not_found_error');
  const pd = await expectError(
    client.messages.create(ask('forbidden-model', 'hi')),
    Anthropic.PermissionDeniedError,
    403,
  );
  assert.equal(pd.error?.error?.type, 'permission_error');
  await expectError(
    client.messages.create(ask(info.routes.r429, 'hi')),
    Anthropic.RateLimitError,
    429,
  );
  try {
    await client.messages.create(ask(info.routes.anthropic_500, 'hi'));
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(err instanceof Anthropic.InternalServerError, `${err?.constructor?.name}`);
    assert.ok([500, 502].includes(err.status), `status ${err.status}`);
  }
});

test('virtual key straight at the gateway (sent as x-api-key)', { skip }, async () => {
  const vk = new Anthropic({ baseURL: info.gateway_url, apiKey: info.vkey, maxRetries: 0 });
  const msg = await vk.messages.create(ask(info.routes.anthropic, 'via a virtual key'));
  assert.match(msg.content[0].text, /^mock reply to: via a virtual key/);
  const bad = new Anthropic({
    baseURL: info.gateway_url,
    apiKey: `${info.vkey.slice(0, -4)}AAAA`,
    maxRetries: 0,
  });
  const err = await expectError(
    bad.messages.create(ask(info.routes.anthropic, 'hi')),
    Anthropic.AuthenticationError,
    401,
  );
  assert.equal(err.error?.error?.type, 'authentication_error');
});
