// DESTROY events lost by conntrack -E in a burst of short connections, with the event
// socket's default receive buffer (conntrack 1.4.7 alone, as the agent ran it before) and
// with the buffer the agent now sets from outside (lib/nlrcvbuf.py).
//
//   node dist/bench/ct-events.js [--rounds 5] [--count 20000] [--seconds 20] [--json]  (as root)
//
// One namespace `cte<pid>` (test/support/ct-events.ts: loopback connections tracked, a reset
// connection's entry ends a second later, so the burst's DESTROY events come as the kernel's
// garbage collector finds them). Per round, both readers one after the other (which goes
// first alternates), each a fresh process: a burst of --count connections (at most
// --seconds), its entries' end, then the events that reached the reader, conntrack's ENOBUFS
// warnings and the event socket's SO_RCVBUF as read back by the helper. The namespace is
// deleted at the end, pass, fail or Ctrl-C.

import { removeNetns } from '../test/support/agent.js';
import { type BurstResult, ReaderProcess, type ReaderMode, addTrackingNetns, readRcvbuf } from '../test/support/ct-events.js';
import { cleanupOnSignals } from './support/exec.js';
import { flagNumber, flagSet } from './support/flags.js';

const ROUNDS = flagNumber('--rounds', 5);
const COUNT = flagNumber('--count', 20_000);
const SECONDS = flagNumber('--seconds', 20);
const NS = `cte${process.pid}`;

interface Row extends BurstResult {
  mode: ReaderMode;
  rcvbuf: number;
}

let reader: ReaderProcess | undefined;
const cleanup = async () => {
  await reader?.stop();
  await removeNetns(NS);
};
cleanupOnSignals(cleanup);

async function once(mode: ReaderMode): Promise<Row> {
  reader = await ReaderProcess.start(NS, mode);
  try {
    const [rcvbuf] = await readRcvbuf(reader.pid);
    return { mode, rcvbuf: rcvbuf!, ...(await reader.burst(COUNT, SECONDS)) };
  } finally {
    await reader.stop();
    reader = undefined;
  }
}

const pct = (r: Row) => (100 * (r.connections - r.events)) / r.connections;

try {
  if (process.getuid?.() !== 0) throw new Error('needs root: the reader runs in a network namespace');
  await addTrackingNetns(NS);
  const rows: Row[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    for (const mode of (i % 2 ? ['reader', 'bare'] : ['bare', 'reader']) as ReaderMode[]) {
      const r = await once(mode);
      rows.push(r);
      if (!flagSet('--json')) console.log(`round ${i + 1} ${mode.padEnd(6)} SO_RCVBUF ${String(r.rcvbuf).padStart(8)}: ${r.connections} connections in ${r.seconds} s, ${r.events} events (${pct(r).toFixed(2)}% lost), ${r.overruns} ENOBUFS`);
    }
  }
  if (flagSet('--json')) console.log(JSON.stringify(rows));
  else
    for (const mode of ['bare', 'reader'] as const) {
      const lost = rows.filter((r) => r.mode === mode).map(pct);
      console.log(`${mode}: lost ${Math.min(...lost).toFixed(2)}-${Math.max(...lost).toFixed(2)}% of the DESTROY events over ${lost.length} rounds`);
    }
} finally {
  await cleanup();
}
