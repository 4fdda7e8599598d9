// Commands the benchmarks cannot do without (their output, or an error naming the command),
// and stopping the long-lived children they start.

import type { ChildProcess } from 'node:child_process';
import { run } from '../../src/agent/dataplane/kernel.js';

export async function must(cmd: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(cmd, argv, undefined, env);
  if (r.code !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** SIGTERM to the child's own PID (`ip netns exec` execs its command), SIGKILL after `graceMs`. */
export function stopChild(child: ChildProcess, graceMs = 2_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** On SIGINT or SIGTERM: say so, run `cleanup` (namespaces, children, the lab), exit 130. */
export function cleanupOnSignals(cleanup: () => Promise<void>, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      say(`${sig}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
}

/** `cirrus lab down --name LAB`, reporting (not throwing) a failure: clean-up goes on. */
export async function labDown(cirrus: string, lab: string): Promise<void> {
  const r = await run(process.execPath, [cirrus, 'lab', 'down', '--name', lab]);
  if (r.code !== 0) process.stderr.write(`lab down: ${r.stderr.trim()}\n`);
}
