/**
 * `npm run serve` as a user runs it, for the tests and benchmarks that start real host processes: spawn it in its
 * own process group (as a terminal does, so a signal reaches the host), wait for its ready line, pick free ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const READY = /^matrix-p2p node host ready: server name (\S+) at (http:\/\/127\.0\.0\.1:(\d+))$/m;

export interface Served {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm run -s serve -- <args>` in its own process group. */
export function serve(args: string[]): Served {
  const child = spawn('npm', ['run', '-s', 'serve', '--', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Poll `probe` until it returns something other than undefined, or fail after `ms`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The ready line's match (1: server name, 2: URL, 3: port), or an error if the host exits first. */
export function ready(s: Served): Promise<RegExpExecArray> {
  return waitFor('the ready line', () => {
    if (s.child.exitCode !== null) throw new Error(`serve exited early: ${s.stderr()}`);
    return READY.exec(s.stdout()) ?? undefined;
  });
}

/** Whether every process of the group has exited. */
export function groupGone(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return false;
  } catch {
    return true;
  }
}

/** Signal the host's whole process group (no-op once it is gone). */
export function kill(s: Served | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    if (s?.child.pid) process.kill(-s.child.pid, signal);
  } catch {
    /* gone */
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}
