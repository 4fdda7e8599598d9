// Flow analytics on a 2-host lab: a TCP transfer across hosts is recorded by both hosts
// with the right networks, hosts and byte counts (iperf3's own count within 1%), a denied
// attempt with the deciding policy rule, traffic while the collector is down arrives once
// it is back; the CLI (cirrus flows, top) and the network's summary show them.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { EVENT_BUFFER_BYTES } from '../../src/agent/flows/conntrack.js';
import { pollUntil } from '../../src/util/poll.js';
import { readRcvbuf } from '../support/ct-events.js';
import { TestLab } from '../support/lab.js';
import { call } from '../support/server.js';

if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

const lab = new TestLab('f');
const { w: W, cirrus, add, servers } = lab;
const run = promisify(execFile);
const inside = (w: string, ...cmd: string[]) => run('ip', ['netns', 'exec', W(w), ...cmd], { timeout: 60_000 });
const RED = 'default-domain:admin:red';

type Row = Record<string, unknown>;
async function query(body: object): Promise<Row[]> {
  const r = await call(lab.analytics, 'POST', '/analytics/query', { start_time: 'now-10m', end_time: 'now', ...body });
  assert.equal(r.status, 200, r.text);
  return r.body.value as Row[];
}

/** The flows of one destination port, per recording host, with their counters. */
const flowsTo = (dport: number) =>
  query({
    table: 'FlowRecordTable',
    select_fields: ['vrouter', 'direction_ing', 'sourcevn', 'destvn', 'sourceip', 'destip', 'sport', 'other_vrouter_ip', 'action', 'nw_ace_uuid', 'bytes', 'packets', 'reverse_bytes', 'teardown_time'],
    where: [[{ name: 'dport', value: dport, op: 1 }]],
  });

before(async () => {
  await lab.up(2);
  await cirrus('network', 'create', 'red', '--subnet', '10.51.0.0/24');
  await add('r1', 'h1', 'red', '10.51.0.11');
  await add('r2', 'h2', 'red', '10.51.0.12');
  await add('r3', 'h1', 'red', '10.51.0.13');
  await cirrus('policy', 'create', 'nossh', '--rule', 'deny tcp red > red 22');
  await cirrus('policy', 'attach', 'nossh', '--network', 'red');
});

after(() => lab.down());

test('a TCP transfer across hosts: both hosts record it, with the networks, hosts and iperf3\'s byte count within 1%', async () => {
  servers.push(spawn('ip', ['netns', 'exec', W('r2'), 'iperf3', '-s', '-1', '-p', '5201'], { stdio: 'ignore' }));
  const client = await pollUntil(
    'iperf3 to connect',
    // -w 32K: iperf3 3.12 counts what its client wrote into the socket and what its server read,
    // and the server resets the data connection when told the test ended, discarding what is
    // still buffered: with default buffers (MBs) the bytes that crossed the network fall short of
    // the client's count by up to its send buffer. Small buffers bound both counts' distance
    // from the bytes on the wire to well under 1%.
    // With -J, a refused connection (the server not listening yet) exits 0 with an "error" field: try again.
    () => inside('r1', 'iperf3', '-c', '10.51.0.12', '-p', '5201', '-n', '20M', '-w', '32K', '-J').then((r) => ((JSON.parse(r.stdout) as { error?: string }).error ? undefined : r.stdout), () => undefined),
    { timeoutMs: 15_000, intervalMs: 200 },
  );
  const { sum_sent, sum_received } = (JSON.parse(client) as { end: Record<'sum_sent' | 'sum_received', { bytes: number }> }).end;
  const [sent, received] = [sum_sent.bytes, sum_received.bytes];
  // The data connection is the one that carried the bytes (iperf3 has a control connection on the same port).
  // IPv4 + TCP with timestamps: 52 bytes of headers per packet counted (one per GSO super-packet).
  const payload = (r: Row) => Number(r['bytes']) - 52 * Number(r['packets']);
  const data = await pollUntil(
    'both hosts to report the whole transfer',
    async () => {
      const rows = (await flowsTo(5201)).filter((r) => payload(r) >= sent * 0.99);
      return rows.length === 2 ? rows : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
  const [h1, h2] = ['h1', 'h2'].map((h) => data.find((r) => r['vrouter'] === h)!);
  assert.deepEqual(
    [h1!['direction_ing'], h1!['sourcevn'], h1!['destvn'], h1!['sourceip'], h1!['destip'], h1!['other_vrouter_ip'], h1!['action']],
    [1, RED, RED, '10.51.0.11', '10.51.0.12', '10.254.0.2', 'pass'],
    'h1 saw it leave its workload for h2',
  );
  assert.deepEqual([h2!['direction_ing'], h2!['sourcevn'], h2!['destvn'], h2!['other_vrouter_ip']], [0, RED, RED, '10.254.0.1'], 'h2 saw it arrive from h1');
  for (const r of [h1!, h2!]) {
    for (const [what, count] of [['sent', sent], ['received', received]] as const) {
      const error = Math.abs(payload(r) - count) / count;
      assert.ok(error < 0.01, `${r['vrouter']}: ${payload(r)} bytes of payload counted, iperf3 ${what} ${count} (${(error * 100).toFixed(2)}%)`);
    }
    assert.ok(Number(r['reverse_bytes']) > 0, 'the acknowledgements counted in the reply direction');
  }
  // cirrus top talkers counts it once (where it entered), cirrus flows shows it.
  const top = JSON.parse((await cirrus('-o', 'json', 'top', 'talkers', '--since', '10m', '--analytics', lab.analytics)).stdout) as Row[];
  assert.equal(top[0]!['sourceip'], '10.51.0.11');
  assert.ok(Math.abs(Number(top[0]!['sum(bytes)']) - Number(h1!['bytes'])) < Number(h1!['bytes']) * 0.01, 'top talkers: the transfer counted once');
  const flows = (await cirrus('flows', '--network', 'red', '--since', '10m', '--analytics', lab.analytics)).stdout;
  assert.match(flows, /10\.51\.0\.11:\d+ +default-domain:admin:red 10\.51\.0\.12:5201 +tcp +pass/);
  const uve = await call(lab.analytics, 'GET', `/analytics/uves/virtual-network/${RED}?since=10m`);
  assert.equal(uve.status, 200);
  assert.ok(uve.body.UveVirtualNetworkAgent.out_bytes >= received && uve.body.UveVirtualNetworkAgent.in_bytes >= received, 'a transfer inside red: out of and into red');
  assert.ok(uve.body.UveVirtualNetworkAgent.top_peers.some((p: Row) => p['ip'] === '10.51.0.12'));
});

test('a denied attempt is recorded with the policy rule that denied it', async () => {
  const policy = (await call(lab.api, 'GET', '/network-policys?detail=True')).body['network-policys'].map((e: Row) => e['network-policy'] as Row).find((p: Row) => (p['fq_name'] as string[]).at(-1) === 'nossh');
  const rule = (policy['network_policy_entries'] as { policy_rule: { rule_uuid: string }[] }).policy_rule[0]!.rule_uuid;
  const attempt = `import socket
s = socket.socket(); s.settimeout(1)
try: s.connect(('10.51.0.12', 22))
except OSError: pass`;
  const denied = await pollUntil(
    'the denied attempt',
    async () => {
      await inside('r1', 'python3', '-c', attempt);
      const rows = (await flowsTo(22)).filter((r) => r['action'] === 'deny');
      return rows.length ? rows : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 500 },
  );
  assert.deepEqual([denied[0]!['vrouter'], denied[0]!['sourcevn'], denied[0]!['destvn'], denied[0]!['nw_ace_uuid'], denied[0]!['reverse_bytes']], ['h1', RED, RED, rule, 0]);
  assert.ok(Number(denied[0]!['packets']) >= 1);
  const listed = (await cirrus('flows', '--denied', '--since', '10m', '--analytics', lab.analytics)).stdout;
  assert.match(listed, new RegExp(`10\\.51\\.0\\.12:22 +tcp +deny .*${rule}`));
});

test('each agent gives its conntrack -E a large event buffer: introspect /flows says so, the socket reads it back', async () => {
  for (const h of ['h1', 'h2']) {
    const flows = JSON.parse((await cirrus('lab', 'exec', h, '--name', lab.name, '--', 'curl', '-s', '127.0.0.1:8085/flows')).stdout) as { pipeline: { pids: { events: number }; eventBuffer?: unknown } };
    assert.deepEqual(flows.pipeline.eventBuffer, { bytes: 2 * EVENT_BUFFER_BYTES }, h);
    const [rcvbuf] = await readRcvbuf(flows.pipeline.pids.events);
    assert.equal(rcvbuf, 2 * EVENT_BUFFER_BYTES, h);
  }
});

test('flows while the collector is down arrive once it is back, once', async () => {
  const state = JSON.parse(fs.readFileSync(`/run/cirrus/lab/${lab.name}/lab.json`, 'utf8')) as { collector: { pid: number } };
  process.kill(state.collector.pid, 'SIGKILL');
  await pollUntil('the collector to be gone', () => (fs.existsSync(`/proc/${state.collector.pid}`) ? undefined : true), { timeoutMs: 5_000, intervalMs: 50 });
  await inside('r1', 'ping', '-c', '3', '-i', '0.2', '10.51.0.13');
  await cirrus('lab', 'up', '--hosts', '2', '--name', lab.name);
  const pings = await pollUntil(
    'the ping recorded',
    async () => {
      const rows = await query({ table: 'FlowRecordTable', select_fields: ['vrouter', 'packets', 'reverse_packets'], where: [[{ name: 'protocol', value: 1, op: 1 }, { name: 'destip', value: '10.51.0.13', op: 1 }]] });
      return rows.length && Number(rows[0]!['packets']) >= 3 ? rows : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
  assert.deepEqual(pings, [{ vrouter: 'h1', packets: 3, reverse_packets: 3 }], 'same host: one record, each packet counted once');
});
