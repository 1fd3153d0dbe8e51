// An independent verifier for AAM's tokens: the npm `jose` library, which
// shares no code with AAM, fetches aam-attest's JWKS (createRemoteJWKSet)
// and verifies a token that `aam-agent token` obtained with a key in a
// PKCS#11 token (jwtVerify), then checks its claims, the RFC 7638
// thumbprint binding (cnf.jkt) and that tampering is caught.
//
// The stack (aam-vault on SoftHSM2, aam-attest, the registered workload)
// comes from the aam-e2e-agent-stack driver ($AAM_E2E_AGENT_STACK), which
// prints its coordinates as one JSON line and tears everything down when
// its stdin closes.  Binaries: $AAM_AGENT_BIN.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);

let jose = null;
try {
  jose = await import('jose');
} catch {
  jose = null;
}

const driverBin = process.env.AAM_E2E_AGENT_STACK;
const agentBin = process.env.AAM_AGENT_BIN;
const skip = !jose
  ? 'npm package jose is not installed (run npm ci in tests/e2e)'
  : !driverBin || !agentBin
    ? 'AAM_E2E_AGENT_STACK / AAM_AGENT_BIN not set'
    : false;

let driver = null;
let info = null;
let token = null;

async function startStack() {
  const child = spawn(driverBin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const first = new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the stack driver exited with ${code}`)));
  });
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error('the stack did not start within 90 s')), 90_000).unref(),
  );
  try {
    const line = await Promise.race([first, timeout]);
    return { child, info: JSON.parse(line) };
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
}

function agent(...args) {
  return run(agentBin, ['-c', info.agent_config, ...args], {
    env: { ...process.env, SOFTHSM2_CONF: info.softhsm2_conf },
    timeout: 60_000,
  });
}

before(async () => {
  if (skip) return;
  ({ child: driver, info } = await startStack());
  const { stdout } = await agent('token');
  token = stdout.trim();
});

after(async () => {
  if (!driver) return;
  const exited = once(driver, 'exit');
  driver.stdin.end();
  const [code] = await exited;
  assert.equal(code, 0, 'the stack driver shut down cleanly');
});

test('the token verifies against the JWKS endpoint with jose', { skip }, async () => {
  assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  const jwks = jose.createRemoteJWKSet(new URL(info.jwks_url));
  const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
    issuer: info.issuer,
    audience: info.audience,
    algorithms: ['ES256'],
    typ: 'JWT',
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti'],
  });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(typeof protectedHeader.kid, 'string');
  // The kid names a key that the JWKS serves, with the usual metadata.
  const set = await (await fetch(info.jwks_url)).json();
  const key = set.keys.find((k) => k.kid === protectedHeader.kid);
  assert.ok(key, 'the kid is in the JWKS');
  assert.equal(key.kty, 'EC');
  assert.equal(key.crv, 'P-256');
  assert.equal(key.d, undefined, 'no private member is published');

  assert.equal(payload.sub, info.spiffe_id);
  assert.equal(payload.aud, info.audience);
  assert.equal(payload.iss, info.issuer);
  assert.equal(payload.exp - payload.iat, 120, 'the registered TTL');
  assert.ok(payload.nbf <= payload.iat);
  assert.equal(typeof payload.jti, 'string');
  assert.ok(payload.jti.length >= 16);
  assert.deepEqual(payload.aam, {
    owner: 'carol@example.com',
    team: 'platform',
    environment: 'staging',
    deployment: 'e2e-v1',
    method: 'pkcs11',
  });
});

test('cnf.jkt is the RFC 7638 thumbprint of the agent key', { skip }, async () => {
  const { payload } = await jose.jwtVerify(
    token,
    jose.createRemoteJWKSet(new URL(info.jwks_url)),
    { issuer: info.issuer, audience: info.audience },
  );
  const { stdout } = await agent('identity');
  const id = JSON.parse(stdout);
  assert.equal(id.method, 'pkcs11');
  // jose computes the thumbprint itself from the public JWK.
  const tp = await jose.calculateJwkThumbprint(id.jwk, 'sha256');
  assert.equal(tp, id.jkt);
  assert.equal(payload.cnf.jkt, tp);
  assert.equal(payload.cnf.jkt, info.jkt, 'the key the driver created in the token');
});

test('tampered tokens and wrong expectations are rejected', { skip }, async () => {
  const jwks = jose.createRemoteJWKSet(new URL(info.jwks_url));
  const [h, p, s] = token.split('.');
  // Another payload under the same signature.
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  claims.sub = 'spiffe://prod/agent/someone-else';
  const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
  await assert.rejects(jose.jwtVerify(forged, jwks), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  // One flipped bit in the signature.
  const sig = Buffer.from(s, 'base64url');
  sig[10] ^= 1;
  await assert.rejects(jose.jwtVerify(`${h}.${p}.${sig.toString('base64url')}`, jwks), {
    code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  });
  await assert.rejects(jose.jwtVerify(token, jwks, { audience: 'https://elsewhere' }), {
    code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
  });
  await assert.rejects(jose.jwtVerify(token, jwks, { issuer: 'https://not-the-issuer' }), {
    code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
  });
  // After its exp the token is refused (jose's clock moved 121 s ahead).
  await assert.rejects(
    jose.jwtVerify(token, jwks, { currentDate: new Date(Date.now() + 121_000) }),
    { code: 'ERR_JWT_EXPIRED' },
  );
});
