/**
 * `imp/verify`, kept for services that imported it from the imp package: the library itself is the
 * package `@imp/verify` (packages/verify), which depends on jose only.
 */
export * from '@imp/verify';
