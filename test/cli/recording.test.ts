/**
 * Recording rules as tables: which sessions policy records (strictest matching rule, default,
 * break-glass floor), the policy file's recording section and its errors, asciicast chunk checks,
 * playback timing, and the CLI's chunker (bounded chunks, big output split, input only when asked).
 */
import { describe, expect, it } from 'vitest';
import { AsciicastRecorder } from '../../src/cli/recording/recorder.js';
import { parsePolicy } from '../../src/core/policy/load.js';
import { recordingModeFor } from '../../src/core/policy/recording.js';
import {
  chunkProblem,
  eventLine,
  headerLine,
  parseAsciicast,
  playbackTimes,
} from '../../src/core/recording/asciicast.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';

const base = 'identity: { issuer: https://idp.example.com }\n';

describe('which sessions are recorded', () => {
  const policy = parsePolicy(
    `${base}recording:
  default: optional
  rules:
    - { environments: [prod], mode: required }
    - { tiers: [free], mode: off }
    - { tiers: [enterprise], scopes: [write], environments: [staging], mode: required }
`,
    'broker.yaml',
  ).recording;
  const s = (
    tier: string,
    environment: string,
    scope: 'read' | 'write',
    mode: 'standard' | 'break_glass' = 'standard',
  ) => ({
    tier,
    environment,
    scope,
    mode,
  });
  it.each([
    ['prod is required', s('standard', 'prod', 'read'), 'required'],
    ['free tier in prod: the strictest matching rule wins', s('free', 'prod', 'read'), 'required'],
    ['free tier in staging: off', s('free', 'staging', 'read'), 'off'],
    ['no rule matches: the default', s('standard', 'staging', 'read'), 'optional'],
    ['enterprise write in staging', s('enterprise', 'staging', 'write'), 'required'],
    ['enterprise read in staging', s('enterprise', 'staging', 'read'), 'optional'],
    ['break-glass is at least required by default', s('free', 'staging', 'write', 'break_glass'), 'required'],
  ] as const)('%s', (_name, session, expected) => {
    expect(recordingModeFor(policy, session)).toBe(expected);
  });

  it('the dev policy records prod, not staging, and break-glass always', () => {
    const dev = parsePolicy(devPolicyYaml('http://127.0.0.1:1', 'http://127.0.0.1:2'), 'dev').recording;
    expect(recordingModeFor(dev, s('standard', 'prod', 'read'))).toBe('required');
    expect(recordingModeFor(dev, s('standard', 'staging', 'read'))).toBe('off');
    expect(recordingModeFor(dev, s('standard', 'staging', 'write', 'break_glass'))).toBe('required');
  });

  it('without a recording section nothing but break-glass is recorded', () => {
    const none = parsePolicy(base, 'broker.yaml').recording;
    expect(recordingModeFor(none, s('standard', 'prod', 'write'))).toBe('off');
    expect(recordingModeFor(none, s('standard', 'prod', 'write', 'break_glass'))).toBe('required');
  });

  it.each([
    [
      'an unknown mode',
      'recording: { default: sometimes }\n',
      'recording.default: must be required, optional or off',
    ],
    [
      'a chunk limit over the body limit',
      'recording: { max_chunk_bytes: 100000 }\n',
      'recording.max_chunk_bytes: must be at most 61440',
    ],
    [
      'a bad rule key',
      'recording: { rules: [{ tenant: acme }] }\n',
      'recording.rules[0].tenant: unknown key',
    ],
    ['a bad outage bound', 'recording: { max_outage: soon }\n', 'recording.max_outage'],
  ])('refuses %s', (_name, yaml, expected) => {
    expect(() => parsePolicy(base + yaml, 'broker.yaml')).toThrow(expected);
  });
});

describe('asciicast chunks', () => {
  const header = headerLine({ version: 2, width: 80, height: 24 });
  it.each([
    ['a header and events as chunk 0', header + eventLine(0.1, 'o', 'hi'), 0, null],
    ['events as a later chunk', eventLine(1, 'o', 'x') + eventLine(1.5, 'r', '90x30'), 3, null],
    ['no header in chunk 0', eventLine(0.1, 'o', 'hi'), 0, 'chunk 0 must start with an asciicast v2 header'],
    ['a header in a later chunk', header, 1, 'line 1 is not an asciicast event'],
    ['a partial line', '[0.1, "o", "hi"]', 1, 'must end with a newline'],
    ['not JSON', 'echo hi\n', 1, 'line 1 is not JSON'],
    ['an unknown event code', '[0.1, "x", "hi"]\n', 1, 'not an asciicast event'],
    ['empty', '', 1, 'cannot be empty'],
  ])('%s', (_name, data, seq, problem) => {
    const found = chunkProblem(data, seq);
    if (problem === null) expect(found).toBeNull();
    else expect(found).toContain(problem);
  });

  it('plays back faster and with long pauses cut to the idle limit', () => {
    const events = parseAsciicast(
      header + eventLine(1, 'o', 'a') + eventLine(11, 'o', 'b') + eventLine(12, 'o', 'c'),
    ).events;
    expect(playbackTimes(events, 1, null)).toEqual([1, 11, 12]);
    expect(playbackTimes(events, 2, 2)).toEqual([0.5, 1.5, 2]);
  });
});

describe('the chunker', () => {
  const make = (recordInput: boolean, maxChunkBytes = 4096) => {
    const chunks: string[] = [];
    let now = 1_000_000;
    const recorder = new AsciicastRecorder({
      header: { version: 2, width: 80, height: 24 },
      startedAt: now,
      now: () => now,
      recordInput,
      maxChunkBytes,
      emit: (data) => chunks.push(data),
    });
    return { recorder, chunks, tick: (ms: number) => (now += ms) };
  };

  it('records output and resizes with their times; input only when policy asks', () => {
    const { recorder, chunks, tick } = make(false);
    tick(500);
    recorder.input('secret\r');
    recorder.output('ls\r\n');
    tick(250);
    recorder.resize(100, 30);
    recorder.flush();
    expect(chunks).toHaveLength(1);
    const { header, events } = parseAsciicast(chunks[0]!);
    expect(header).toMatchObject({ version: 2, width: 80, height: 24 });
    expect(events).toEqual([
      [0.5, 'o', 'ls\r\n'],
      [0.75, 'r', '100x30'],
    ]);
    const withInput = make(true);
    withInput.recorder.input('secret\r');
    withInput.recorder.flush();
    expect(parseAsciicast(withInput.chunks[0]!).events).toEqual([[0, 'i', 'secret\r']]);
  });

  it('keeps every chunk within the limit as sent, splitting a burst of escapes and emoji', () => {
    const { recorder, chunks } = make(false, 2048);
    const burst = '\u001b[1m😀x'.repeat(2000);
    recorder.output(burst);
    recorder.flush();
    expect(chunks.length).toBeGreaterThan(3);
    for (const [i, chunk] of chunks.entries()) {
      expect(Buffer.byteLength(JSON.stringify(chunk))).toBeLessThanOrEqual(2048);
      expect(chunkProblem(chunk, i)).toBeNull();
    }
    const replayed = parseAsciicast(chunks.join(''))
      .events.map((e) => e[2])
      .join('');
    expect(replayed).toBe(burst);
  });
});
