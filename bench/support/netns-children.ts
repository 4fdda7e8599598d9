// Long-lived children of a benchmark inside namespaces (servers, probers): started with
// `ip netns exec` (which execs: the child's PID is the program's own), optionally waited
// for until their first line says "ready", and each stopped by its own PID at the end,
// whatever happens.

import { type ChildProcess, type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import readline from 'node:readline';
import { stopChild } from './exec.js';

const children = new Set<ChildProcess>();

export function stop(child: ChildProcess): Promise<void> {
  children.delete(child);
  return stopChild(child);
}

/** Stops every child still running (a benchmark's `finally`). */
export async function stopAll(): Promise<void> {
  for (const c of [...children]) await stop(c);
}

/** `ip netns exec NS argv...`, waiting until its first line on stdout is `ready` when asked to. */
export async function startIn(netns: string, argv: string[], waitReady: boolean): Promise<ChildProcessWithoutNullStreams> {
  const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-2000)));
  if (!waitReady) {
    child.stdout.on('data', () => {}); // drained: a full pipe would stall a server (iperf3 prints every test)
    return child;
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(' ')} in ${netns}: not ready after 10 s: ${err}`)), 10_000);
    const lines = readline.createInterface({ input: child.stdout });
    lines.once('line', (l) => {
      clearTimeout(timer);
      lines.close();
      if (l.trim() === 'ready') resolve();
      else reject(new Error(`${argv.join(' ')} in ${netns}: said '${l}'`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')} in ${netns} exited (${code}): ${err}`));
    });
  });
  return child;
}
