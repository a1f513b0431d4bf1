/**
 * Where the web console shows a request or a session. One place, so that CLI messages, notifications
 * and the console's own routes agree on the shape (`/console/requests/<id>`, `/console/sessions/<id>`).
 */
export type ConsoleLinkKind = 'request' | 'session';

export function consoleLink(brokerUrl: string, kind: ConsoleLinkKind, id: string): string {
  const base = brokerUrl.replace(/\/+$/, '');
  return `${base}/console/${kind === 'request' ? 'requests' : 'sessions'}/${encodeURIComponent(id)}`;
}
