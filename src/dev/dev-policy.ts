/** The built-in policy of `imp dev`: the reference shape with three tenants. Ports are filled in at start. */

/** A break-glass webhook for the dev policy. */
export interface DevAlertHook {
  url: string;
  secretEnv?: string;
}

/** Renders the dev policy for the given IdP issuer and tenant API URL (and break-glass webhooks, if any). */
export function devPolicyYaml(
  issuer: string,
  tenantApi: string,
  options: { alerts?: DevAlertHook[]; notify?: DevAlertHook } = {},
): string {
  const alerts = (options.alerts ?? [])
    .map(
      (hook) =>
        `{ url: ${JSON.stringify(hook.url)}${hook.secretEnv ? `, secret_env: ${hook.secretEnv}` : ''} }`,
    )
    .join(', ');
  return `# imp dev — built-in policy (dev users: alice, bob, carol, dave, erin, mallory; password = login)
identity: { issuer: ${issuer}, client_id: imp-cli, groups_claim: groups }
reauth: { max_age: 5m, per_session: true }
tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$' }
reason: { min_length: 10 }
sessions: { default_ttl: 30m }
approvals: { request_ttl: 1h }
break_glass: { confirm_window: 10m, max_ttl: 30m${alerts ? `, alerts: [${alerts}]` : ''} }
recording: { default: off, break_glass: required, rules: [{ environments: [prod], mode: required }], max_outage: 10s }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h }
  - { name: lead, groups: [support-leads], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h, approve: true }
  - { name: oncall, groups: [sre-oncall], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h, break_glass: true, break_glass_confirm: true }
  - { name: security, groups: [security], audit: true, review: true, revoke: true, supervise: true, passkey_reset: true }
tenants:
  - { id: acme, name: Acme Corp, tier: enterprise, approval_required: [write], upstream: { prod: ${tenantApi}, staging: ${tenantApi} } }
  - { id: globex, name: Globex, tier: standard, approval_required: [], upstream: { prod: ${tenantApi} } }
  - { id: initech, name: Initech, tier: standard, approval_required: [write], upstream: { prod: ${tenantApi}, staging: ${tenantApi} } }
${
  options.notify
    ? `notifications:
  channels: [{ name: dev-receiver, type: webhook, url: ${JSON.stringify(options.notify.url)}${options.notify.secretEnv ? `, secret_env: ${options.notify.secretEnv}` : ''} }]
  routes: [{ events: ['*'], channels: [dev-receiver] }]
`
    : ''
}`;
}
