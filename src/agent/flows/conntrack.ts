// The conntrack processes of the flow pipeline, parsed as their output arrives
// (conntrack-xml.ts): the stream of DESTROY events and reads of the table. Counters need
// net.netfilter.nf_conntrack_acct and the kernel's start/stop times nf_conntrack_timestamp,
// both per network namespace.

import type { ChildProcess } from 'node:child_process';
import { ConntrackXmlReader, type CtEntry } from './conntrack-xml.js';
import { spawnReader } from './reader.js';

export interface CtStreamHandlers {
  /** An entry; the object is reused for the next one. */
  onEntry: (e: CtEntry) => void;
  /** After the entries of one chunk of output. */
  onChunk: () => void;
}

export interface CtCounters {
  /** Lines conntrack printed that were not understood (see ConntrackXmlReader). */
  unparsed: number;
  /** Times the kernel dropped events because conntrack -E lagged (its ENOBUFS warning). */
  overruns: number;
}

/** IPv4 only, in the kernel's filter; the ids key flows, the kernel times are their start and end. */
const FORMAT = ['-f', 'ipv4', '-o', 'xml,id,ktimestamp'];
const TABLE_NICE = 10;

/**
 * The event socket's receive buffer, asked of the kernel (which doubles it: 16 MiB counted).
 * An event waiting there counts 1,280 bytes (measured, kernel 6.18): 16 MiB hold 13,000 of
 * them, the default 208 KB 166 (bursts of connections ending overran it: docs/analytics.md).
 * Only events that wait take memory.
 */
export const EVENT_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * Streams DESTROY events until killed; `onExit` when it ends. NEW events are not asked for:
 * a DESTROY carries the kernel's start time and final counters, and flows that live are
 * found by the table reads (docs/analytics.md). conntrack 1.4.7 applies --buffer-size to its
 * request socket, not to the event socket, which keeps net.core.rmem_default (a host-wide
 * sysctl): DestroyEvents sets the event socket's buffer from outside (event-buffer.ts). The
 * option stays: harmless here, and a conntrack that applies it to the event socket has the
 * large buffer from its first event, and without the helper (an older kernel: no pidfd_getfd).
 */
export function watchDestroys(h: CtStreamHandlers, counters: CtCounters, onExit: (why: string) => void): ChildProcess {
  const reader = new ConntrackXmlReader(h.onEntry);
  let unparsed = 0;
  return spawnReader('conntrack -E', ['conntrack', '-E', '-e', 'DESTROY', ...FORMAT, '--buffer-size', String(EVENT_BUFFER_BYTES)], {
    onData: (chunk) => {
      reader.push(chunk);
      counters.unparsed += reader.unparsed - unparsed;
      unparsed = reader.unparsed;
      h.onChunk();
    },
    onStderr: (c) => {
      if (c.includes('ENOBUFS')) counters.overruns++;
    },
    onExit: (_code, why) => onExit(why),
  });
}

/**
 * Lists the table, entry by entry as the listing arrives; `onEnd` with an error when it
 * failed. At nice 10: a listing of a large table is the pipeline's largest cost, and nothing
 * is lost when it takes longer (events are, when their reader lags).
 */
export function readTable(h: CtStreamHandlers, counters: CtCounters, onEnd: (error?: string) => void): ChildProcess {
  const reader = new ConntrackXmlReader(h.onEntry);
  return spawnReader('conntrack -L', ['nice', '-n', String(TABLE_NICE), 'conntrack', '-L', ...FORMAT], {
    onData: (chunk) => {
      reader.push(chunk);
      h.onChunk();
    },
    onExit: (code, why) => {
      reader.end();
      counters.unparsed += reader.unparsed;
      onEnd(code === 0 ? undefined : why);
    },
  });
}
