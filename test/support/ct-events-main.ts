// The agent's DESTROY event reader, run by test/support/ct-events.ts in a network namespace
// (`ip netns exec NS node ct-events-main.js MODE`): MODE `reader` is the agent's
// (DestroyEvents: conntrack -E and its enlarged event buffer), `bare` conntrack -E alone
// (watchDestroys: what the agent did before, the buffer left as conntrack sets it).
// Prints {"pid", "buffer"?} once running (reader: once the buffer's outcome is known), then
// counts the TCP DESTROY events until the marker, the DESTROY of a UDP entry from MARKER_SRC,
// and prints {"events", "overruns"}. Ends on SIGTERM.
// Without a MODE it does nothing: the test runner loads every file under dist/test/.

import { type CtCounters, watchDestroys } from '../../src/agent/flows/conntrack.js';
import type { CtEntry } from '../../src/agent/flows/conntrack-xml.js';
import { DestroyEvents } from '../../src/agent/flows/destroy-events.js';
import { parseIpv4 } from '../../src/util/ipv4.js';
import { pollUntil } from '../../src/util/poll.js';
import { MARKER_SRC } from './ct-events.js';

const MARKER = parseIpv4(MARKER_SRC);

async function main(mode: 'reader' | 'bare'): Promise<void> {
  const counters: CtCounters = { unparsed: 0, overruns: 0 };
  let events = 0;
  const onEntry = (e: CtEntry) => {
    if (e.event !== 'destroy') return;
    if (e.protocol === 6) events++;
    else if (e.protocol === 17 && e.orig.src === MARKER) console.log(JSON.stringify({ events, overruns: counters.overruns }));
  };
  const handlers = { onEntry, onChunk: () => undefined };
  if (mode === 'bare') {
    const child = watchDestroys(handlers, counters, (why) => console.error(why));
    process.once('SIGTERM', () => child.kill());
    console.log(JSON.stringify({ pid: child.pid }));
    return;
  }
  const reader = new DestroyEvents(handlers, counters);
  reader.start();
  process.once('SIGTERM', () => void reader.stop().then(() => process.exit(0)));
  const buffer = await pollUntil('the event buffer', () => reader.buffer, { timeoutMs: 10_000, intervalMs: 20 });
  console.log(JSON.stringify({ pid: reader.pid, buffer }));
}

const mode = process.argv[2];
if (mode === 'reader' || mode === 'bare') await main(mode);
