/** The demo tenant API of `imp dev`: a stand-in for the SaaS backend that accepts impersonation. */
import { createServer, type Server } from 'node:http';

/** A running demo tenant API. */
export interface TenantApi {
  url: string;
  close(): Promise<void>;
}

/** Starts the demo tenant API on loopback. */
export async function startTenantApi(options: { port: number; host?: string }): Promise<TenantApi> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'GET' && path === '/healthz') {
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ok: true, service: 'imp demo tenant API' }));
      return;
    }
    response
      .writeHead(404, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: 'not_found' }));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, resolve);
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('The tenant API has no TCP address.');
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
