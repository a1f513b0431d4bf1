/**
 * The documented shapes of Slack and Teams incoming-webhook bodies, checked the way their receivers
 * do: Slack Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks) by hand, and Teams'
 * Adaptive Card by Microsoft's own `adaptivecards` parser (unknown elements, properties or versions
 * are parse events).
 */
import { createRequire } from 'node:module';

/** Problems with a Slack incoming-webhook body (empty when it is valid). */
export function slackProblems(payload: unknown): string[] {
  const problems: string[] = [];
  const body = payload as { text?: unknown; blocks?: unknown };
  if (typeof body.text !== 'string' || body.text.length === 0)
    problems.push('text: a non-empty fallback is required with blocks');
  if (!Array.isArray(body.blocks) || body.blocks.length === 0 || body.blocks.length > 50)
    return [...problems, 'blocks: 1 to 50 blocks'];
  const textObject = (t: unknown, where: string, max: number) => {
    const o = t as { type?: unknown; text?: unknown };
    if (o?.type !== 'mrkdwn' && o?.type !== 'plain_text')
      problems.push(`${where}.type: mrkdwn or plain_text`);
    if (typeof o?.text !== 'string' || o.text.length < 1 || o.text.length > max)
      problems.push(`${where}.text: 1..${max} characters`);
  };
  body.blocks.forEach((block: { type?: unknown; text?: unknown; elements?: unknown }, i) => {
    if (block.type === 'section') textObject(block.text, `blocks[${i}].text`, 3000);
    else if (block.type === 'context') {
      if (!Array.isArray(block.elements) || block.elements.length < 1 || block.elements.length > 10)
        problems.push(`blocks[${i}].elements: 1 to 10`);
      else
        block.elements.forEach((e, j) => {
          textObject(e, `blocks[${i}].elements[${j}]`, 3000);
        });
    } else problems.push(`blocks[${i}].type: unexpected ${String(block.type)}`);
  });
  return problems;
}

interface AdaptiveCardsModule {
  AdaptiveCard: new () => { parse(json: unknown, context: unknown): void; toJSON(): unknown };
  SerializationContext: new () => { eventCount: number; getEventAt(i: number): { message: string } };
}

/** Problems with a Teams Workflows webhook body carrying one Adaptive Card (empty when it is valid). */
export function teamsProblems(payload: unknown): string[] {
  const body = payload as { type?: unknown; attachments?: { contentType?: unknown; content?: unknown }[] };
  const problems: string[] = [];
  if (body.type !== 'message') problems.push('type: must be "message"');
  if (!Array.isArray(body.attachments) || body.attachments.length !== 1)
    return [...problems, 'attachments: exactly one card'];
  const [attachment] = body.attachments;
  if (attachment?.contentType !== 'application/vnd.microsoft.card.adaptive')
    problems.push('attachments[0].contentType: application/vnd.microsoft.card.adaptive');
  // The package's ESM build has extensionless imports Node cannot load; its UMD bundle works in Node.
  const ac = createRequire(import.meta.url)('adaptivecards/dist/adaptivecards.js') as AdaptiveCardsModule;
  const card = new ac.AdaptiveCard();
  const context = new ac.SerializationContext();
  card.parse(attachment?.content, context);
  for (let i = 0; i < context.eventCount; i++) problems.push(`card: ${context.getEventAt(i).message}`);
  const content = attachment?.content as { type?: unknown; version?: unknown; body?: unknown[] };
  if (content?.type !== 'AdaptiveCard') problems.push('card.type: AdaptiveCard');
  // Teams renders Adaptive Cards up to 1.5 in webhooks; imp sends 1.4.
  if (typeof content?.version !== 'string' || Number(content.version) > 1.5)
    problems.push('card.version: ≤ 1.5');
  const roundTrip = card.toJSON() as { body?: unknown[] };
  if (roundTrip.body?.length !== content?.body?.length)
    problems.push('card: an element was dropped by the parser');
  return problems;
}
