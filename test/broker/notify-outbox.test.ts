/**
 * The outbox across a restart, and mail that will not go out in the clear: a notification whose
 * delivery was cut by the broker stopping is delivered by the next broker on the same store (same
 * delivery id, one accepted delivery); a relay that does not offer STARTTLS gets neither the mail
 * nor the credentials, and the failure is audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker } from '../helpers/broker.js';
import { startHttpReceiver, startSmtpServer, waitFor } from '../helpers/notify-receivers.js';
import { makeTempDir } from '../helpers/temp.js';

const ENV: Record<string, string> = { IMP_T_USER: 'imp-relay', IMP_T_PASS: 'smtp-password-not-for-logs' };
let http: Awaited<ReturnType<typeof startHttpReceiver>>;
let relay: Awaited<ReturnType<typeof startSmtpServer>>;

beforeAll(async () => {
  http = await startHttpReceiver({ '/hook': ['hang'] });
  relay = await startSmtpServer({ user: ENV.IMP_T_USER!, pass: ENV.IMP_T_PASS! }, { noStartTls: true });
}, 20_000);
afterAll(async () => {
  await http?.close();
  await relay?.close();
});

const policy = (issuer: string) => `${devPolicyYaml(issuer, 'http://127.0.0.1:9')}notifications:
  channels:
    - { name: hook, type: webhook, url: '${http.url}/hook' }
    - { name: mail, type: email, from: imp@example.test, to: [security@example.test], smtp: { host: 127.0.0.1, port: ${relay.port}, security: starttls, user_env: IMP_T_USER, password_env: IMP_T_PASS, ca_file: ${relay.caFile} } }
  routes:
    - { events: [request.pending], channels: [hook, mail] }
`;

describe('the notification outbox', () => {
  it('a delivery cut by a stop is made by the next broker; a relay without STARTTLS gets nothing', async () => {
    const stateDir = makeTempDir('imp-outbox-');
    const settings = { delaysMs: [0, 20], timeoutMs: 60_000, env: (name: string) => ENV[name] };
    const first = await startTestBroker({ policyYaml: policy, stateDir, notifySettings: settings });
    let id: string;
    try {
      const alice = await first.loginAs('alice');
      const asked = await first.call<{ session: { id: string } }>('POST', '/v1/sessions', alice, {
        tenant: 'acme',
        environment: 'prod',
        scope: 'write',
        ticket: 'SUP-9',
        reason: 'Customer cannot export invoices',
        ttl: 600,
      });
      expect(asked.status).toBe(202);
      id = asked.body.session.id;
      await waitFor(() => http.posts.some((p) => p.path === '/hook' && p.body.includes(id)));
      const failed = await waitFor(async () =>
        (await first.store.readAudit({ type: 'notify.failed' })).find((e) => e.data.channel === 'mail'),
      );
      // A 5xx refusal is final: one try, refused before any credential or message was sent.
      expect(failed.data).toMatchObject({ kind: 'request.pending', attempts: 1, channel_type: 'email' });
      expect(String(failed.data.error)).toMatch(/STARTTLS/i);
      expect(relay.mails).toEqual([]);
      expect(relay.auths).toEqual([]);
      expect(JSON.stringify(failed)).not.toContain(ENV.IMP_T_PASS);
      // The access review lists the undelivered notification beside lost alerts.
      const erin = await first.loginAs('erin');
      const review = await first.call<{ alert_failures: { url: string; attempts: number }[] }>(
        'GET',
        '/v1/review',
        erin,
      );
      expect(review.body.alert_failures).toContainEqual(
        expect.objectContaining({ url: 'channel:mail (request.pending)', attempts: 1 }),
      );
    } finally {
      await first.close();
    }
    // The receiver is back; a new broker on the same store delivers what the first one left.
    http.plan['/hook'] = [200];
    const second = await startTestBroker({ policyYaml: policy, stateDir, notifySettings: settings });
    try {
      const sent = await waitFor(async () =>
        (await second.store.readAudit({ type: 'notify.sent' })).find((e) => e.data.channel === 'hook'),
      );
      expect(sent).toMatchObject({
        session: id!,
        data: { kind: 'request.pending', attempts: 2, status: 200 },
      });
      const tries = http.posts.filter((p) => p.path === '/hook');
      expect(tries.map((p) => p.status)).toEqual(['hung', 200]);
      expect(tries[0]!.headers['x-imp-delivery']).toBe(tries[1]!.headers['x-imp-delivery']);
      expect(JSON.parse(tries[1]!.body)).toMatchObject({ event: 'request.pending', session_id: id! });
    } finally {
      await second.close();
    }
  }, 30_000);
});
