/** Records for store tests where only their presence (and the bytes they write) matters. */
import type { LoginRecord } from '../../src/store/types.js';

/** A login row named `id`: unique by id and ID-token hash, otherwise fixed. */
export function plainLogin(id: string): LoginRecord {
  return {
    id,
    iss: 'https://idp.example.com',
    sub: `user-${id}`,
    email: null,
    authTime: 1,
    createdAt: 1,
    expiresAt: 2,
    idTokenHash: `hash-${id}`,
    groups: [],
  };
}
