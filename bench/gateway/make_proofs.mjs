// Pre-generates DPoP proofs for the gateway benchmark's DPoP path.
//
// A wrk Lua script cannot sign, so this script does the agent's part
// offline with node:crypto (no npm package): it makes an EC P-256 key,
// registers it for SPIFFE_ID with `aamctl workload register --jkt`,
// obtains a DPoP-bound token from aam-attest by the PKCS#11 attestation
// exchange (challenge, then the nonce signed with the key), and writes N
// proofs for `POST <gateway>/v1/chat/completions`, each with its own jti
// and `ath` = the token's hash, one per line, after the token on line 1.
// Every proof is used once by dpop.lua (the gateway refuses replays), and
// they must be used within the gateway's 60 s `iat` window.
//
//   node make_proofs.mjs INFO_JSON SPIFFE_ID N OUT_FILE
// INFO_JSON is a file holding the driver's line (gw_stack_driver.c):
// gateway_url, attest_url, aamctl, config.
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const [infoJson, spiffeId, nStr, out] = process.argv.slice(2);
const info = JSON.parse(readFileSync(infoJson, 'utf8'));
const n = Number(nStr);
const attestUrl = info.attest_url;

const b64u = (b) => Buffer.from(b).toString('base64url');
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pub = publicKey.export({ format: 'jwk' });
const jwk = { crv: 'P-256', kty: 'EC', x: pub.x, y: pub.y };
// RFC 7638: the members in lexicographic order, no whitespace.
const jkt = b64u(createHash('sha256').update(JSON.stringify(jwk)).digest());
const es256 = (data) => sign('sha256', Buffer.from(data), { key: privateKey, dsaEncoding: 'ieee-p1363' });

execFileSync(info.aamctl, ['-c', info.config, 'workload', 'register', spiffeId, '--method', 'pkcs11',
  '--owner', 'bench@example.com', '--team', 'bench', '--env', 'bench', '--deployment', 'bench',
  '--audience', info.gateway_url, '--jkt', jkt], { stdio: ['ignore', 'ignore', 'inherit'] });

const post = async (path, body) => {
  const r = await fetch(`${attestUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
};
const { nonce } = await post('/v1/attest/challenge', { method: 'pkcs11', spiffe_id: spiffeId });
const msg = `aam-attest-pkcs11\n${nonce}\n${spiffeId}\n${info.gateway_url}`;
const { token } = await post('/v1/attest/pkcs11', {
  spiffe_id: spiffeId,
  audience: info.gateway_url,
  nonce,
  jwk,
  signature: b64u(es256(msg)),
});

const header = b64u(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk }));
const htu = `${info.gateway_url}/v1/chat/completions`;
const ath = b64u(createHash('sha256').update(token).digest());
const iat = Math.floor(Date.now() / 1000);
const lines = [token];
const t0 = Date.now();
for (let i = 0; i < n; i++) {
  const payload = b64u(JSON.stringify({ jti: b64u(randomBytes(16)), htm: 'POST', htu, iat, ath }));
  const input = `${header}.${payload}`;
  lines.push(`${input}.${b64u(es256(input))}`);
}
writeFileSync(out, `${lines.join('\n')}\n`, { mode: 0o600 });
process.stderr.write(`make_proofs: ${n} proofs in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
