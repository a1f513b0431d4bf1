/**
 * Untrusted text (reasons, tenant names, ticket ids, server messages) is printed through here so a
 * value like "\u001b]0;pwned\u0007" cannot retitle a terminal, move the cursor or hide output.
 */

// C0 controls except none, DEL, C1 controls, and bidi/line-separator tricks.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Replaces control and bidi-override characters with visible escapes (`\x1b`, `\u202e`). */
export function escapeUntrusted(text: string): string {
  return text.replace(UNSAFE, (ch) => {
    const code = ch.charCodeAt(0);
    if (ch === '\n') return '\\n';
    if (ch === '\t') return '\\t';
    if (ch === '\r') return '\\r';
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** True when text holds a control or bidi-override character (used to refuse such input). */
export function hasControlCharacters(text: string): boolean {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(text);
}
