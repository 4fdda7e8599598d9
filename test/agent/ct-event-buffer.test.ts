// The receive buffer of conntrack -E's event socket, enlarged from outside (lib/nlrcvbuf.py,
// DestroyEvents), against the real conntrack and kernel in a scratch namespace: the socket
// reads back the large size, and a burst of 10,000 short connections reaches the reader
// whole; conntrack -E alone keeps the small default buffer. 10,000: the enlarged buffer
// holds them all even if the reader lagged through the whole burst, so the outcome does not
// depend on the machine's load; the default buffer holds 166 (bench/ct-events.ts:
// conntrack -E alone lost 34-57% of such bursts).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EVENT_BUFFER_BYTES } from '../../src/agent/flows/conntrack.js';
import { removeNetns, sh } from '../support/agent.js';
import { HELPER, ReaderProcess, addTrackingNetns, readRcvbuf } from '../support/ct-events.js';

if (process.getuid?.() !== 0) throw new Error('test/agent needs root: the reader runs in a network namespace');
const P = `ns${process.pid}`;
const NS = `${P}-ct`;
const BURST = 10_000;
const BURST_SECONDS = 20;
let reader: ReaderProcess | undefined;

before(() => addTrackingNetns(NS));
after(async () => {
  await reader?.stop();
  await removeNetns(`${P}-`);
});

test('the agent\'s reader gives conntrack -E\'s event socket the large buffer (read back on its own)', async () => {
  reader = await ReaderProcess.start(NS, 'reader');
  // The kernel doubles what it is asked for, and reports that.
  assert.deepEqual(reader.buffer, { bytes: 2 * EVENT_BUFFER_BYTES });
  assert.deepEqual(await readRcvbuf(reader.pid), [2 * EVENT_BUFFER_BYTES]);
});

test('a burst of 10,000 short connections: at least 99% of their DESTROY events reach the agent\'s reader, no ENOBUFS', async () => {
  assert.ok(reader, 'the reader of the test before');
  const r = await reader.burst(BURST, BURST_SECONDS);
  assert.ok(r.connections >= BURST / 2, `the burst made only ${r.connections} connections in ${r.seconds} s`);
  assert.equal(r.overruns, 0, 'conntrack said ENOBUFS');
  assert.ok(r.events >= 0.99 * r.connections, `${r.events} DESTROY events of ${r.connections} connections`);
});

// What the helper works around: conntrack 1.4.7 leaves the event socket at the default. (Its
// losses under a burst are measured in bench/ct-events.ts, not asserted here: with events the
// kernel failed to deliver, how long the table takes to empty depends on the machine.)
test('conntrack -E alone keeps the default buffer', async () => {
  await reader?.stop();
  reader = await ReaderProcess.start(NS, 'bare');
  const rmemDefault = Number((await sh('ip', ['netns', 'exec', NS, 'cat', '/proc/sys/net/core/rmem_default'])).stdout);
  assert.deepEqual(await readRcvbuf(reader.pid), [rmemDefault]);
});

test('the helper says clearly what it cannot do', async () => {
  const usage = await sh('python3', [HELPER, 'x']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: nlrcvbuf\.py \[--wait SECONDS\] PID \[BYTES\]/);
  const none = await sh('python3', [HELPER, '--wait', '0.1', String(process.pid), '1048576']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, new RegExp(`process ${process.pid} has no netfilter socket subscribed to events \\(waited 0.1 s\\)`));
  const gone = await sh('python3', [HELPER, '999999999', '1048576']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /process 999999999 is gone/);
});
