// Throughput of imp/verify on one core, next to raw crypto.verify of the same ES256 signature in the
// same run (the floor no verifier can beat) and jose's jwtVerify (what a plain WebCrypto verifier costs).
// Run: npx tsc -p tsconfig.build.json && node bench/verify.js [count] [--json]
// (`npm run bench` runs it with --json as part of bench/run.js.)
import { KeyObject, verify as verifySignature } from 'node:crypto';
import { availableParallelism, cpus } from 'node:os';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { createVerifier } from '../dist/verify/index.js';

const COUNT = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 50_000);
const JSON_OUTPUT = process.argv.includes('--json');
const ISSUER = 'https://broker.bench.invalid';
const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);

const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(publicKey)), kid: 'session-bench', alg: 'ES256', use: 'sig' };
const iat = Math.floor(NOW / 1000);
const token = await new SignJWT({
  act: { sub: 'alice', iss: 'https://idp.bench.invalid', email: 'alice@example.com' },
  scope: 'tenant:read',
  env: 'prod',
  sid: 'ses_bench',
  jti: 'jti_bench',
  ticket: 'SUP-1',
  mode: 'standard',
})
  .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'at+jwt' })
  .setIssuer(ISSUER)
  .setAudience('imp-tenant-api')
  .setSubject('acme')
  .setIssuedAt(iat)
  .setExpirationTime(iat + 1800)
  .sign(privateKey);

const verifier = createVerifier({
  issuer: ISSUER,
  jwks: { keys: [jwk] },
  statusCheck: false,
  now: () => NOW,
});
const joseKeys = createLocalJWKSet({ keys: [jwk] });
const dot = token.lastIndexOf('.');
const signingInput = Buffer.from(token.slice(0, dot));
const signature = Buffer.from(token.slice(dot + 1), 'base64url');
const rawKey = KeyObject.from(publicKey);

async function measure(name, run) {
  for (let i = 0; i < 2_000; i++) await run(); // warm up: JIT, key import caches
  const start = process.hrtime.bigint();
  for (let i = 0; i < COUNT; i++) await run();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { name, perSecond: COUNT / seconds, microseconds: (seconds / COUNT) * 1e6 };
}

const raw = await measure('raw crypto.verify (ES256, sync)', () => {
  if (!verifySignature('sha256', signingInput, { key: rawKey, dsaEncoding: 'ieee-p1363' }, signature)) {
    throw new Error('baseline signature did not verify');
  }
});
const ours = await measure('imp/verify verify()', async () => {
  const context = await verifier.verify(token);
  if (context.tenant !== 'acme') throw new Error('unexpected tenant');
});
const jose = await measure('jose jwtVerify (WebCrypto)', () =>
  jwtVerify(token, joseKeys, { issuer: ISSUER, audience: 'imp-tenant-api', currentDate: new Date(NOW) }),
);

if (JSON_OUTPUT) {
  const round = (result) => ({
    name: result.name,
    perSecond: Math.round(result.perSecond),
    microseconds: Number(result.microseconds.toFixed(1)),
  });
  process.stdout.write(
    `${JSON.stringify({ verify_lib: { count: COUNT, raw: round(raw), ours: round(ours), jose: round(jose) } })}\n`,
  );
  process.exit(0);
}
const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(
  `${COUNT} verifications each · Node ${process.version} · ${cpu} · ${availableParallelism()} cores`,
);
for (const result of [raw, ours, jose]) {
  console.log(
    `${result.name.padEnd(34)} ${Math.round(result.perSecond).toLocaleString('en-US').padStart(9)} tokens/s  ` +
      `${result.microseconds.toFixed(1).padStart(6)} µs each  ratio to raw ${(result.perSecond / raw.perSecond).toFixed(2)}`,
  );
}
