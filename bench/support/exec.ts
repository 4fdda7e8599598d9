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
