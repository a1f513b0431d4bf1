/**
 * Short ids: people type the first characters of a request or session id (`imp approve 7f3a`), the
 * way git takes an abbreviated commit. The broker resolves a prefix among what the caller may act
 * on, so a prefix never tells anyone whether someone else's id exists.
 */

/** The fewest characters a prefix must have. */
export const MIN_PREFIX = 4;

/** How many characters imp prints when it names a request or session for people to type. */
export const SHORT_ID_LENGTH = 8;

const FULL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PREFIX = /^[0-9a-f][0-9a-f-]*$/;

/** The short form of an id, as printed in messages and notifications. */
export function shortId(id: string): string {
  return id.slice(0, SHORT_ID_LENGTH);
}

/** True for a whole id (a UUID in lower case). */
export function isFullId(text: string): boolean {
  return FULL_ID.test(text);
}

/** True for a typed prefix the broker will look up: hex and dashes, 4 to 35 characters. */
export function isIdPrefix(text: string): boolean {
  return text.length >= MIN_PREFIX && text.length < 36 && PREFIX.test(text);
}
