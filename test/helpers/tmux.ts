/**
 * A real pseudo-terminal for terminal-UX tests: a private tmux server runs imp, the test types with
 * send-keys and reads the screen with capture-pane — what a person would see.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';

/** One tmux window running a command. */
export class TmuxSession {
  private readonly socket = `imp-test-${randomUUID().slice(0, 8)}`;
  private readonly name = 'imp';

  constructor(
    command: string,
    env: NodeJS.ProcessEnv,
    options: { width?: number; height?: number; cwd?: string } = {},
  ) {
    const envArgs = Object.entries(env).flatMap(([key, value]) =>
      value === undefined ? [] : ['-e', `${key}=${value}`],
    );
    // tmux starts the command through a login shell whose profile resets PATH: set it again inside.
    if (env.PATH) command = `export PATH='${env.PATH.replace(/'/g, "'\\''")}'; ${command}`;
    execFileSync(
      'tmux',
      [
        '-L',
        this.socket,
        '-f',
        '/dev/null',
        'new-session',
        '-d',
        '-s',
        this.name,
        '-x',
        String(options.width ?? 160),
        '-y',
        String(options.height ?? 50),
        ...(options.cwd ? ['-c', options.cwd] : []),
        ...envArgs,
        command,
      ],
      {
        env: { PATH: process.env.PATH, HOME: env.HOME, TERM: 'xterm-256color' },
      },
    );
    execFileSync('tmux', ['-L', this.socket, 'set-option', '-t', this.name, 'remain-on-exit', 'on']);
  }

  /** The whole screen plus scrollback, as plain text. */
  screen(): string {
    return execFileSync(
      'tmux',
      ['-L', this.socket, 'capture-pane', '-p', '-J', '-S', '-2000', '-t', this.name],
      { encoding: 'utf8' },
    );
  }

  /** The screen with its colours, as SGR escape sequences (to check that a banner really is red). */
  screenWithColours(): string {
    return execFileSync(
      'tmux',
      ['-L', this.socket, 'capture-pane', '-p', '-e', '-J', '-S', '-2000', '-t', this.name],
      { encoding: 'utf8' },
    );
  }

  /** Types text (literally) and optionally presses Enter. */
  type(text: string, enter = true): void {
    execFileSync('tmux', ['-L', this.socket, 'send-keys', '-t', this.name, '-l', text]);
    if (enter) this.key('Enter');
  }

  /** Presses a key by tmux name: Enter, C-c, BSpace … */
  key(name: string): void {
    execFileSync('tmux', ['-L', this.socket, 'send-keys', '-t', this.name, name]);
  }

  /** Waits until the screen matches; fails with the screen in the message. */
  async waitFor(pattern: string | RegExp, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let screen = '';
    while (Date.now() < deadline) {
      screen = this.screen();
      if (typeof pattern === 'string' ? screen.includes(pattern) : pattern.test(screen)) return screen;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${String(pattern)}; the screen shows:\n${screen}`);
  }

  /** Resizes the window, as a person dragging the terminal's corner. */
  resize(width: number, height: number): void {
    execFileSync('tmux', [
      '-L',
      this.socket,
      'resize-window',
      '-t',
      this.name,
      '-x',
      String(width),
      '-y',
      String(height),
    ]);
  }

  /** Kills the tmux server. */
  close(): void {
    try {
      execFileSync('tmux', ['-L', this.socket, 'kill-server'], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}
