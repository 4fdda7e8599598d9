// A long-lived reader process of the flow observer (conntrack -E, the NFLOG reader): it
// dies with the agent (setpriv --pdeathsig: an orphan would hold the namespace), its
// stdout goes to `onData`, and `onExit` is told once why it ended, with its last stderr.

import { type ChildProcess, spawn } from 'node:child_process';

export function spawnReader(what: string, argv: string[], onData: (chunk: string) => void, onExit: (why: string) => void): ChildProcess {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', onData);
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-500)));
  let ended = false;
  const end = (why: string) => {
    if (!ended) onExit(why);
    ended = true;
  };
  child.on('error', (e) => end(e.message));
  child.on('exit', (code) => end(`${what} exited (${code}): ${err.trim()}`));
  return child;
}
