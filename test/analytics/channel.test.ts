// The flow channel end to end with the real collector process: samples pushed while the
// collector runs, while it is killed (SIGKILL, mid-stream) and while it is away all arrive
// exactly once after it comes back on the same store; a wrong token is refused; the
// sender's bounded buffer drops and counts what does not fit; a malformed frame closes
// that channel, is counted and stores nothing, and the collector goes on; a trickle of
// samples goes in one frame a second, not one per acknowledgement.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { CHANNEL_PATH } from '../../src/analytics/channel.js';
import { encodeFrame } from '../../src/analytics/frame.js';
import { COLUMNS, WIDTH, encodeBatch } from '../../src/analytics/schema.js';
import { FlowShipper } from '../../src/analytics/shipper.js';
import { pollUntil } from '../../src/util/poll.js';
import { startCollectorProcess } from '../support/collector.js';
import { syntheticFlows } from '../support/flows.js';
import { call, freePort, tempDataDir } from '../support/server.js';

const dir = tempDataDir();
const tokenFile = path.join(dir, 'token');
fs.writeFileSync(tokenFile, 'sesame\n');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Samples stored, counted by the query API: each synthetic sample is one flow. */
async function stored(url: string): Promise<{ flows: number; samples: number }> {
  const r = await call(url, 'POST', '/analytics/query', { table: 'FlowSeriesTable', start_time: 'now-2h', end_time: 'now+1h', select_fields: ['flow_count', 'sum(packets)'] });
  assert.equal(r.status, 200, r.text);
  return { flows: r.body.value[0]?.flow_count ?? 0, samples: r.body.value[0]?.['sum(packets)'] ?? 0 };
}

test('a collector killed mid-stream and restarted on its store ends up with every sample exactly once', async () => {
  const port = await freePort();
  const data = path.join(dir, 'store');
  let collector = await startCollectorProcess(data, port, tokenFile);
  const now = Date.now();
  const gen = syntheticFlows({ seed: 7, startMs: now - 30 * 60_000, endMs: now });
  // One packet each: sum(packets) counts samples, flow_count distinct flows (a duplicate shows as more samples than flows).
  const next = (n: number) => gen(n).map((s) => ({ ...s, packets: 1 }));
  const shipper = new FlowShipper({ url: collector.url.replace('http', 'ws'), token: 'sesame', host: 'h1', maxBuffered: 200_000, window: 4 });
  shipper.start();
  try {
    shipper.push(next(20_000));
    await shipper.drained();
    assert.deepEqual(await stored(collector.url), { flows: 20_000, samples: 20_000 });
    // Kill it while batches are in flight, push more while it is down, bring it back.
    shipper.push(next(30_000));
    await pollUntil('some of the second lot acknowledged', () => (shipper.stats.acked > 20_000 ? true : undefined), { timeoutMs: 10_000, intervalMs: 5 });
    await collector.stop(true);
    await pollUntil('the sender to notice', () => (shipper.stats.connected ? undefined : true), { timeoutMs: 5_000, intervalMs: 5 });
    shipper.push(next(10_000));
    collector = await startCollectorProcess(data, port, tokenFile);
    await shipper.drained();
    assert.deepEqual(await stored(collector.url), { flows: 60_000, samples: 60_000 }, 'nothing lost, nothing doubled');
    assert.ok(shipper.stats.acked === 60_000 && shipper.stats.buffered === 0 && shipper.stats.dropped === 0);
  } finally {
    shipper.stop();
    await collector.stop();
  }
});

test('a steady trickle of samples goes in one frame per linger (1 s), not one per acknowledgement', async () => {
  const port = await freePort();
  const collector = await startCollectorProcess(path.join(dir, 'store4'), port, tokenFile);
  const shipper = new FlowShipper({ url: collector.url.replace('http', 'ws'), token: 'sesame', host: 'h5' });
  shipper.start();
  try {
    await pollUntil('connected', () => (shipper.stats.connected ? true : undefined), { timeoutMs: 5_000, intervalMs: 5 });
    const now = Date.now();
    const gen = syntheticFlows({ seed: 9, startMs: now - 60_000, endMs: now });
    // 5 samples every 10 ms for 1.5 s: sent on every ack, that would be a frame (and a commit) per round trip.
    const started = Date.now();
    while (Date.now() - started < 1_500) {
      shipper.push(gen(5).map((x) => ({ ...x, packets: 1 })));
      await new Promise((r) => setTimeout(r, 10));
    }
    await shipper.drained();
    const pushed = shipper.stats.acked;
    assert.deepEqual((await stored(collector.url)).samples, pushed);
    const commits = Number(/cirrus_collector_store_commits_total (\d+)/.exec((await call(collector.url, 'GET', '/metrics')).text)?.[1]);
    assert.ok(commits >= 1 && commits <= 3, `${pushed} samples in ${commits} commits`);
  } finally {
    shipper.stop();
    await collector.stop();
  }
});

test('the collector refuses a wrong token; a full sender buffer drops and counts', async () => {
  const port = await freePort();
  const collector = await startCollectorProcess(path.join(dir, 'store2'), port, tokenFile);
  const shipper = new FlowShipper({ url: collector.url.replace('http', 'ws'), token: 'wrong', host: 'h2', maxBuffered: 1_000 });
  shipper.start();
  try {
    const now = Date.now();
    const dropped = shipper.push(syntheticFlows({ startMs: now - 1000, endMs: now })(1_500));
    assert.equal(dropped, 500);
    assert.deepEqual([shipper.stats.dropped, shipper.stats.buffered], [500, 1_000]);
    const metrics = await pollUntil(
      'the refusal counted',
      async () => {
        const m = (await call(collector.url, 'GET', '/metrics')).text;
        return /cirrus_collector_rejected_total\{reason="missing or wrong token"\} [1-9]/.test(m) ? m : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.match(metrics, /cirrus_collector_samples_total 0/);
    assert.equal(shipper.stats.acked, 0);
  } finally {
    shipper.stop();
    await collector.stop();
  }
});

test('a malformed frame closes that channel and is counted; nothing of it is stored; the collector goes on', async () => {
  const port = await freePort();
  const collector = await startCollectorProcess(path.join(dir, 'store3'), port, tokenFile);
  try {
    const now = Date.now();
    const frame = encodeFrame(1, encodeBatch(syntheticFlows({ startMs: now - 1000, endMs: now })(100)));
    // The last row's reverse_packets made negative: the frame is well formed but for that value.
    const pad8 = (n: number) => (n + 7) & ~7;
    const after = COLUMNS.slice(COLUMNS.findIndex((c) => c.name === 'reverse_packets') + 1);
    const tail = after.reduce((n, c) => n + (c.nullable ? pad8(13) : 0) + pad8(100 * WIDTH[c.kind]), 0);
    new DataView(frame.buffer).setBigInt64(frame.length - tail - 8, -1n, true);
    const ws = new WebSocket(`${collector.url.replace('http', 'ws')}${CHANNEL_PATH}`, { headers: { authorization: 'Bearer sesame' } });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    await new Promise((resolve) => ws.on('open', resolve));
    ws.send(JSON.stringify({ type: 'hello', source: 'h3/0000000c', host: 'h3' }));
    ws.send(frame);
    const { code, reason } = await closed;
    assert.equal(code, 4001);
    assert.match(reason, /^frame: column reverse_packets row 99: not an integer/);
    const metrics = (await call(collector.url, 'GET', '/metrics')).text;
    assert.match(metrics, /cirrus_collector_rejected_total\{reason="frame"\} 1/);
    assert.match(metrics, /cirrus_collector_samples_total 0/);
    // A good sender is served as before.
    const shipper = new FlowShipper({ url: collector.url.replace('http', 'ws'), token: 'sesame', host: 'h4' });
    shipper.start();
    try {
      shipper.push(syntheticFlows({ startMs: now - 1000, endMs: now })(100).map((s) => ({ ...s, packets: 1 })));
      await shipper.drained();
      assert.deepEqual(await stored(collector.url), { flows: 100, samples: 100 });
    } finally {
      shipper.stop();
    }
  } finally {
    await collector.stop();
  }
});
