/**
 * `imp dev`'s stand-in for a security team's webhook: receives break-glass alerts on loopback,
 * checks their HMAC signature the way a real receiver should (constant-time, timestamp within five
 * minutes) and reports each delivery, so trying break-glass locally shows the noise it makes.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { escapeUntrusted } from '../core/escape.js';

/** The env var name the dev policy gives as `secret_env`; the dev stack supplies its value itself. */
export const DEV_ALERT_SECRET_ENV = 'IMP_DEV_ALERT_SECRET';

/** A running receiver. */
export interface DevAlertReceiver {
  url: string;
  /** The HMAC secret the broker signs with (random per run). */
  secret: string;
  close(): Promise<void>;
}

/** True when `header` is `t=<unix>,v1=<hex>` over `t.body` with `secret`, and `t` is within 5 minutes of now. */
export function verifyAlertSignature(
  header: string | undefined,
  body: string,
  secret: string,
  nowMs: number,
): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match || Math.abs(nowMs / 1000 - Number(match[1])) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'));
}

/** Starts the receiver; `report` gets one line per delivery. */
export async function startAlertReceiver(options: {
  port: number;
  now: () => number;
  report: (line: string) => void;
}): Promise<DevAlertReceiver> {
  const secret = randomBytes(32).toString('hex');
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const signature = req.headers['x-imp-signature'];
      const valid = verifyAlertSignature(
        typeof signature === 'string' ? signature : undefined,
        body,
        secret,
        options.now(),
      );
      if (!valid) {
        options.report('[alert] refused a delivery with a missing or bad signature');
        res.writeHead(401).end();
        return;
      }
      try {
        const notification = JSON.parse(body) as { event?: unknown; text?: unknown; command?: unknown };
        if (notification.event !== 'break_glass.started' && typeof notification.text === 'string') {
          // A notification (README: Notifications): its text is already escaped by the broker; again here.
          const title = escapeUntrusted(notification.text.split('\n')[0] ?? '');
          const act =
            typeof notification.command === 'string' ? ` → ${escapeUntrusted(notification.command)}` : '';
          options.report(`[notify] ${title}${act} (signature ok)`);
          res.writeHead(204).end();
          return;
        }
        const alert = JSON.parse(body) as Record<string, unknown> & {
          requester?: { email?: string; sub?: string };
          confirmer?: { email?: string; sub?: string } | null;
        };
        const text = (value: unknown) => escapeUntrusted(String(value ?? '?'));
        const who = (p?: { email?: string; sub?: string } | null) => text(p?.email ?? p?.sub);
        options.report(
          `[alert] BREAK-GLASS by ${who(alert.requester)}, confirmed by ${who(alert.confirmer)}, on ${text(alert.tenant)}/${text(alert.environment)}, incident ${text(alert.incident)}, until ${text(alert.expires_at)} (signature ok)`,
        );
      } catch {
        options.report('[alert] a signed delivery that is not JSON');
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    secret,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
