// Commands the benchmarks cannot do without: their output, or an error naming the command.

import { run } from '../../src/agent/dataplane/kernel.js';

export async function must(cmd: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(cmd, argv, undefined, env);
  if (r.code !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}
