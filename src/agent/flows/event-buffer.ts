// The receive buffer of `conntrack -E`'s event socket, set from outside by lib/nlrcvbuf.py:
// conntrack 1.4.7 leaves that socket at net.core.rmem_default (208 KB) whatever its
// --buffer-size says, and the sysctl is host-wide. The helper waits (a bounded time) for
// the process to open its socket, then duplicates it (pidfd_getfd) and sets
// SO_RCVBUFFORCE on it.

import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnReader } from './reader.js';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../lib/nlrcvbuf.py');
/** conntrack opens its event socket a few milliseconds after exec; a loaded host can take longer. */
const WAIT_S = 2;

/** `bytes`: SO_RCVBUF as the kernel reports it (twice what was asked: its bookkeeping counts in it). */
export type EventBuffer = { bytes: number } | { error: string };

/**
 * Sets the receive buffer of the event sockets of process `pid` to `bytes`; `done` once
 * with the outcome. The returned child is the helper (ends within WAIT_S and a start-up).
 */
export function enlargeEventBuffer(pid: number, bytes: number, done: (r: EventBuffer) => void): ChildProcess {
  const out: Buffer[] = [];
  return spawnReader('nlrcvbuf.py', ['python3', SCRIPT, '--wait', String(WAIT_S), String(pid), String(bytes)], {
    onData: (c) => out.push(c),
    onExit: (code, why) => done(code === 0 ? parseHelperOutput(Buffer.concat(out).toString('utf8')) : { error: why }),
  });
}

/** The helper's JSON line; with several sockets, the smallest buffer (the one that overruns first). */
export function parseHelperOutput(text: string): EventBuffer {
  let sizes: unknown[] = [];
  try {
    const o = JSON.parse(text) as { sockets?: { rcvbuf?: unknown }[] };
    sizes = Array.isArray(o.sockets) ? o.sockets.map((s) => s?.rcvbuf) : [];
  } catch {
    // reported below, with the text
  }
  if (!sizes.length || !sizes.every((b): b is number => Number.isSafeInteger(b) && (b as number) > 0)) return { error: `nlrcvbuf.py: unexpected output: ${text.trim().slice(0, 200)}` };
  return { bytes: Math.min(...sizes) };
}
