/**
 * Untrusted text (reasons, tenant names, ticket ids, server messages) is printed through here so a
 * value like "\u001b]0;pwned\u0007" cannot retitle a terminal, move the cursor or hide output.
 */

// C0 controls, DEL, C1 controls (U+009B is a one-byte CSI to many terminals), line/paragraph
// separators, and bidi embeddings, overrides and isolates (Trojan Source, CVE-2021-42574).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// Invisible format characters: zero-width space/joiners, LRM/RLM, the Arabic letter mark, word
// joiner and invisible operators, the BOM. Legitimate inside some scripts' running text, so printed
// text keeps them; but a ticket id or a reason holding one reads differently from what it is.
const INVISIBLE = /[\u200b-\u200f\u061c\u2060-\u2064\ufeff]/g;
const UNSAFE_OR_INVISIBLE = new RegExp(`${UNSAFE.source.slice(0, -1)}${INVISIBLE.source.slice(1)}`, 'g');

/** Replaces control and bidi-override characters with visible escapes (`\x1b`, `\u202e`). */
export function escapeUntrusted(text: string): string {
  return escapeMatching(text, UNSAFE);
}

function escapeMatching(text: string, unsafe: RegExp): string {
  return text.replace(unsafe, (ch) => {
    const code = ch.charCodeAt(0);
    if (ch === '\n') return '\\n';
    if (ch === '\t') return '\\t';
    if (ch === '\r') return '\\r';
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * True when text holds a control, bidi or invisible format character: input holding one (a ticket,
 * a reason, a comment) is refused, not repaired.
 */
export function hasControlCharacters(text: string): boolean {
  UNSAFE_OR_INVISIBLE.lastIndex = 0;
  return UNSAFE_OR_INVISIBLE.test(text);
}

/** Untrusted text as it may be kept (audit, error messages): escaped, invisible characters too, at most `max` code points. */
export function boundedEscape(text: string, max: number): string {
  const points = [...text];
  const escaped = [...escapeMatching(points.slice(0, max).join(''), UNSAFE_OR_INVISIBLE)];
  if (points.length <= max && escaped.length <= max) return escaped.join('');
  return `${escaped.slice(0, max - 1).join('')}…`;
}
