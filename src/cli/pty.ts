/**
 * The session shell on a pseudo-terminal of its own (node-pty), so everything it shows can be
 * recorded, while the person's terminal behaves as before: their terminal goes to raw mode and every
 * key — Ctrl-C, Ctrl-Z, arrows — goes to the shell's pty, whose line discipline turns them into
 * signals for the shell's foreground job; the pty follows the window size. Only the system
 * dependencies use this module (it touches process.stdin/stdout).
 */
import { createRequire } from 'node:module';
import type { ChildHandle, PtyHandle, PtyHooks } from './deps.js';

type NodePty = typeof import('node-pty');

/** Spawns `command` on a new pty wired to this process's terminal. */
export function startPty(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  hooks: PtyHooks,
): PtyHandle {
  // node-pty is a native CommonJS module: loaded only by the commands that run a recorded shell.
  const pty = createRequire(import.meta.url)('node-pty') as NodePty;
  const stdin = process.stdin;
  const stdout = process.stdout;
  const cols = stdout.isTTY ? stdout.columns : 80;
  const rows = stdout.isTTY ? stdout.rows : 24;
  const child = pty.spawn(command, args, {
    name: env.TERM ?? 'xterm-256color',
    cols,
    rows,
    cwd: process.cwd(),
    env: env as Record<string, string>,
  });
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  const onKeys = (data: string) => {
    child.write(data);
    hooks.input(data);
  };
  stdin.on('data', onKeys);
  stdin.resume();
  const onResize = () => {
    child.resize(stdout.columns, stdout.rows);
    hooks.resize(stdout.columns, stdout.rows);
  };
  if (stdout.isTTY) stdout.on('resize', onResize);
  const output = child.onData((data) => {
    stdout.write(data);
    hooks.output(data);
  });
  const exited = new Promise<Awaited<ChildHandle['exited']>>((resolve) => {
    child.onExit(({ exitCode, signal }) => {
      output.dispose();
      stdin.off('data', onKeys);
      if (stdout.isTTY) stdout.off('resize', onResize);
      if (stdin.isTTY) stdin.setRawMode(wasRaw);
      stdin.pause();
      resolve({ code: exitCode, signal: signal ? signalName(signal) : null });
    });
  });
  return {
    pid: child.pid,
    cols,
    rows,
    exited,
    kill: (signal) => {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    },
  };
}

function signalName(signal: number): NodeJS.Signals | null {
  const { signals } = createRequire(import.meta.url)('node:os').constants as {
    signals: Record<string, number>;
  };
  return (Object.keys(signals).find((name) => signals[name] === signal) as NodeJS.Signals) ?? null;
}
