// `lab exec`: a command inside a workload's or a host's namespace, with the caller's
// terminal, its exit status passed through.

import { spawn } from 'node:child_process';
import os from 'node:os';
import { CliError } from '../cli/client.js';
import { checkLabName, nameFlag } from './layout.js';
import { readWorkload, requireState } from './state.js';
import { OUTSIDE } from './gateway.js';

/** The namespace of `target`: host hK's, or the workload's (named like it). */
export function execTarget(labName: string, target: string): string {
  const state = requireState(checkLabName(labName));
  const host = state.hosts.find((h) => h.name === target);
  if (host) return host.netns;
  if (state.gateway && target === state.gateway.name) return state.gateway.netns;
  if (state.gateway && target === OUTSIDE) return state.gateway.outsideNetns;
  if (readWorkload(state.name, target)) return target;
  throw new CliError(`lab '${state.name}' has no workload, host${state.gateway ? ', gw or outside' : ''} '${target}' (see: cirrus lab status${nameFlag(state.name)})`);
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Runs `argv` in `netns`; resolves with its exit status (128 + N when killed by signal N, as shells do). */
export function execIn(netns: string, argv: string[]): Promise<number> {
  if (argv.length === 0) throw new CliError('no command given (cirrus lab exec TARGET -- COMMAND [ARGS...])');
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: 'inherit' });
    // Signals sent to this process (not only the terminal's) reach the command too.
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    for (const s of FORWARDED) process.on(s, forward);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      for (const s of FORWARDED) process.off(s, forward);
      resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0));
    });
  });
}
