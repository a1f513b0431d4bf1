/**
 * The page an action waits on in passkey mode: it links the broker's own passkey page for the
 * ceremony the broker opened for exactly this action (the page shows the action and a code), and
 * its Continue form names that ceremony, so continuing finishes this action and no other.
 */
import { page, type Viewer } from './pages.js';

/** Asks for the passkey confirmation an action needs, then lets the person finish it. */
export function passkeyPage(
  viewer: Viewer,
  action: {
    label: string;
    ceremony: { id: string; url: string; userCode: string };
    /** The rule that refused the confirmation sent before this one (the broker audited it). */
    refused?: string;
  },
): string {
  return page({
    title: 'Confirm with your passkey',
    viewer,
    children: (
      <>
        {action.refused ? (
          <p role="alert" class="notice">
            The broker did not accept that passkey confirmation for this action (rule {action.refused}): it
            was not confirmed, or was made for something else. Confirm this one below.
          </p>
        ) : null}
        <p>
          To <strong>{action.label}</strong>, confirm it is you with your passkey.
        </p>
        <ol>
          <li>
            <a href={action.ceremony.url} target="_blank" rel="noopener">
              Open the passkey confirmation
            </a>{' '}
            and check it shows the code <strong class="code">{action.ceremony.userCode}</strong>.
          </li>
          <li>Come back here and continue.</li>
        </ol>
        <form method="post" action="/console/step-up">
          <input type="hidden" name="csrf" value={viewer.session.csrf} />
          <input type="hidden" name="ceremony" value={action.ceremony.id} />
          <button type="submit">Continue</button>
        </form>
      </>
    ),
  });
}
