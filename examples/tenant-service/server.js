// An example tenant service: the part of a SaaS backend that accepts imp impersonation.
// It depends on @imp/verify only: every request must carry a session token the imp broker minted
// (through its audited proxy); the service serves only the token's tenant, refuses writes with a
// read-only token (defence in depth behind the broker), honours revocation at once (status check)
// and records which engineer did what. Plain node:http so nothing hides the integration.
//
//   IMP_BROKER_URL=https://imp.example.com PORT=8080 node server.js
//
// Environment: IMP_BROKER_URL (required: the broker, `iss` of session tokens), IMP_AUDIENCE (default
// imp-tenant-api, the policy's sessions.audience), PORT (default 8080; 0 picks a free one), HOST
// (default 127.0.0.1). It prints one JSON line {"listening": "<url>"} once it accepts requests.
import { createServer } from 'node:http';
import { checkAccess, createVerifier, ImpersonationError, impersonationErrorResponse } from '@imp/verify';

const broker = process.env.IMP_BROKER_URL;
if (!broker) {
  console.error('Set IMP_BROKER_URL to the imp broker URL (the issuer of session tokens).');
  process.exit(2);
}

const verifier = createVerifier({
  issuer: broker,
  audience: process.env.IMP_AUDIENCE ?? 'imp-tenant-api',
  // Asks the broker whether the session is still active, so a revocation takes effect at once.
  statusCheck: { cacheSeconds: 2 },
});

// The service's own data, per tenant. A real service has a database here.
const notes = new Map([
  ['acme', [{ id: 1, text: 'Invoice 42 was sent twice' }]],
  ['globex', [{ id: 1, text: 'Migrating to the new plan on Monday' }]],
]);
// What impersonating engineers did, as the service saw it (a real service logs this).
const accessLog = [];

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://service');
  if (url.pathname === '/healthz') return send(res, 200, { ok: true });
  let ctx;
  try {
    ctx = await verifier.verifyRequest(req.headers.authorization);
    // Writes need a write session: the broker already refuses them, the service checks again.
    checkAccess(ctx, { scope: req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'write' });
  } catch (error) {
    if (!(error instanceof ImpersonationError)) throw error;
    const answer = impersonationErrorResponse(error);
    return send(res, answer.status, answer.body, answer.headers);
  }
  accessLog.push({
    at: new Date().toISOString(),
    actor: ctx.actor.email ?? ctx.actor.sub,
    tenant: ctx.tenant,
    method: req.method,
    path: url.pathname,
    session: ctx.sessionId,
    ticket: ctx.ticket,
  });
  const tenantNotes = notes.get(ctx.tenant) ?? [];
  notes.set(ctx.tenant, tenantNotes);

  if (req.method === 'GET' && url.pathname === '/v1/whoami')
    return send(res, 200, {
      tenant: ctx.tenant,
      actor: ctx.actor,
      scopes: ctx.scopes,
      mode: ctx.mode,
      ticket: ctx.ticket,
    });
  if (req.method === 'GET' && url.pathname === '/v1/notes')
    return send(res, 200, { tenant: ctx.tenant, notes: tenantNotes });
  if (req.method === 'POST' && url.pathname === '/v1/notes') {
    const body = await readJson(req);
    if (typeof body?.text !== 'string' || body.text.length === 0 || body.text.length > 500)
      return send(res, 400, { error: 'Send {"text": "..."} (1 to 500 characters).' });
    const note = { id: tenantNotes.length + 1, text: body.text, by: ctx.actor.email ?? ctx.actor.sub };
    tenantNotes.push(note);
    return send(res, 201, note);
  }
  if (req.method === 'GET' && url.pathname === '/v1/access-log')
    return send(res, 200, { entries: accessLog.filter((entry) => entry.tenant === ctx.tenant) });
  return send(res, 404, { error: `No route ${req.method} ${url.pathname}` });
});

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) return null;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return null;
  }
}

server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(JSON.stringify({ listening: `http://${address}:${port}` }));
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
