/**
 * A local HTTP server that answers as a ticket system does (Jira's documented shapes, or the generic
 * contract), for contract tests of the adapters. Each test sets the handler; every request is kept
 * (method, path, headers, parsed body) so a test can assert what the broker sent.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TicketSystem } from '../../src/core/policy/tickets.js';

/** A request the server received. */
export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** Answers one request; may write to `res` itself (slow, huge, never). */
export type TicketHandler = (req: Received, res: ServerResponse) => void | Promise<void>;

/** A running fake ticket system. */
export interface TicketServer {
  url: string;
  received: Received[];
  handle(handler: TicketHandler): void;
  close(): Promise<void>;
}

/** Sends JSON with a status. */
export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json;charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Starts the server on a free loopback port. */
export async function startTicketServer(): Promise<TicketServer> {
  let handler: TicketHandler = (_req, res) => json(res, 500, { error: 'no handler' });
  const received: Received[] = [];
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      const entry = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
      received.push(entry);
      open.add(res);
      res.on('close', () => open.delete(res));
      void Promise.resolve(handler(entry, res)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    handle(next) {
      handler = next;
      received.length = 0;
    },
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A TicketSystem with test defaults (short timeout, small body limit). */
export function ticketSystem(overrides: Partial<TicketSystem>): TicketSystem {
  return {
    type: 'http',
    url: 'http://127.0.0.1:9',
    jiraApi: 'cloud',
    user: null,
    tokenEnv: null,
    tokenFile: null,
    openStatuses: [],
    person: 'assignee',
    tenantField: null,
    onUnreachable: 'refuse',
    breakGlass: 'warn',
    timeout: 2,
    maxBodyBytes: 64 * 1024,
    ...overrides,
  };
}
