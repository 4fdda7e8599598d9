// A process of the flow pipeline (conntrack -E, a table read, the NFLOG reader, the event
// buffer's helper): it dies with the thread that started it (setpriv --pdeathsig: the flow
// worker's thread, so with the worker, and so with the agent; an orphan would hold the
// namespace), its stdout goes to `onData` as bytes, its stderr to `onStderr`, and `onExit`
// is told once how it ended, with its last stderr.

import { type ChildProcess, spawn } from 'node:child_process';

/** A long-lived reader that ended is started again after this. */
export const RESTART_MS = 1_000;

export interface ReaderHandlers {
  onData: (chunk: Buffer) => void;
  /** `code`: its exit status (null: killed, or it never ran); `why`: what to log. */
  onExit: (code: number | null, why: string) => void;
  onStderr?: (chunk: string) => void;
}

export function spawnReader(what: string, argv: string[], h: ReaderHandlers): ChildProcess {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout!.on('data', h.onData);
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err = (err + c).slice(-500);
    h.onStderr?.(c);
  });
  let ended = false;
  const end = (code: number | null, why: string) => {
    if (!ended) h.onExit(code, why);
    ended = true;
  };
  child.on('error', (e) => end(null, `${what}: ${e.message}`));
  // 'close': stdout is drained too (on 'exit' the last chunks may still be on their way).
  child.on('close', (code, signal) => end(code, `${what} exited (${code ?? signal}): ${err.trim()}`));
  return child;
}

/** Kills a reader and resolves once it has exited. */
export function stopReader(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill();
  });
}
