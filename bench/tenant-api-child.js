// The demo tenant API in a process of its own (as in production, apart from the broker), for the
// proxy benchmark. Prints {"tenant_api": url}; the first stdin line configures its verifier
// ({"issuer", "audience"}), because the broker's URL is known only once the broker listens.
import { startTenantApi } from '../dist/dev/tenant-api.js';

const api = await startTenantApi({ port: 0 });
process.stdout.write(`${JSON.stringify({ tenant_api: api.url })}\n`);
let input = '';
process.stdin.on('data', (chunk) => {
  input += chunk.toString();
  const at = input.indexOf('\n');
  if (at >= 0) api.configure(JSON.parse(input.slice(0, at)));
});
process.on('SIGTERM', () => {
  api.close().then(() => process.exit(0));
});
