// Topology files with lab workloads, on a 2-host lab: the seed's front end sends logs to
// the management network but cannot ssh there, the server being the workload's program;
// re-apply changes nothing; a changed program is restarted in place; a moved workload is
// made anew and its floating IP follows it; a workload left out of the file is removed;
// delete -f removes the rest, programs included, and leaves a workload made by hand.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { processGroup } from '../../src/lab/processes.js';
import { readWorkload } from '../../src/lab/state.js';
import { pollUntil } from '../../src/util/poll.js';
import { TestLab } from '../support/lab.js';

if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

const lab = new TestLab('t');
const { name: LAB, w: W, cirrus } = lab;
const run = promisify(execFile);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-topology-e2e-'));
const FILE = path.join(dir, 'logs.yaml');

before(() => lab.up(2));
after(async () => {
  await lab.down();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A TCP server on 514 and 22 answering `reply`. */
const server = (reply: string) => [
  'python3',
  '-c',
  `import socket, select
socks = [socket.create_server(('0.0.0.0', p)) for p in (514, 22)]
while True:
    for s in select.select(socks, [], [])[0]:
        c, _ = s.accept(); c.sendall(b'${reply}'); c.close()`,
];

/** The topology (JSON is YAML): front end fe1, management server mg1 on `mgHost`, a floating IP for mg1. */
function write(opts: { mgHost: string; reply: string; withFe2: boolean }): void {
  const workloads: Record<string, unknown>[] = [
    { name: W('fe1'), host: 'h1', network: 'frontend', address: '10.41.0.10' },
    { name: W('mg1'), host: opts.mgHost, network: 'mgmt', address: '10.42.0.10', security_groups: ['mgmt-in'], command: server(opts.reply) },
  ];
  if (opts.withFe2) workloads.push({ name: W('fe2'), host: 'h2', network: 'frontend', address: '10.41.0.11' });
  const topology = {
    name: 'logs',
    networks: [
      { name: 'frontend', subnets: ['10.41.0.0/24'], policies: ['logs'] },
      { name: 'mgmt', subnets: ['10.42.0.0/24'], policies: ['logs'] },
      { name: 'public', subnets: ['203.0.113.0/24'], router_external: true },
    ],
    policies: [{ name: 'logs', rules: ['pass tcp frontend > mgmt 514'] }],
    security_groups: [{ name: 'mgmt-in', rules: ['ingress tcp any 514', 'ingress tcp any 22', 'egress any any'] }],
    workloads,
    floating_ips: [{ name: 'mg1', network: 'public', ports: [W('mg1')] }],
  };
  fs.writeFileSync(FILE, JSON.stringify(topology, null, 2));
}

async function apply(...args: string[]): Promise<string[]> {
  const out = JSON.parse((await cirrus('-o', 'json', ...args, '-f', FILE, '--lab', LAB)).stdout) as { plan: { action: string; kind: string; fq_name: string[]; changes?: { field: string }[] }[] };
  return out.plan.filter((s) => s.action !== 'unchanged').map((s) => `${s.action} ${s.kind} ${s.fq_name.at(-1)}${s.changes ? ` (${s.changes.map((c) => c.field).join(',')})` : ''}`);
}

/** What answers TCP `port` of mg1 from fe1 (one attempt), or undefined. */
const answer = (port: number) =>
  run('ip', ['netns', 'exec', W('fe1'), 'python3', '-c', `import socket; print(socket.create_connection(('10.42.0.10', ${port}), timeout=1).recv(64).decode())`], { timeout: 10_000 }).then(
    (r) => r.stdout.trim(),
    () => undefined,
  );
const answers = (port: number, expected: string) =>
  pollUntil(`fe1 gets '${expected}' from mg1:${port}`, async () => ((await answer(port)) === expected ? true : undefined), { timeoutMs: 20_000, intervalMs: 200 });

const fipPorts = async (): Promise<string[]> => {
  const res = await fetch(`${lab.api}/floating-ips?detail=True`);
  const body = (await res.json()) as { 'floating-ips': { 'floating-ip': { virtual_machine_interface_refs?: { uuid: string }[] } }[] };
  return body['floating-ips'].flatMap((f) => (f['floating-ip'].virtual_machine_interface_refs ?? []).map((r) => r.uuid));
};
const programLeft = (leader: number) => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d) && processGroup(Number(d)) === leader);

test('apply -f with lab workloads: reachability, idempotence, in-place and replacing updates, removal, delete -f', async () => {
  await cirrus('network', 'create', 'hand', '--subnet', '10.43.0.0/24');
  await lab.add('hand1', 'h1', 'hand', '10.43.0.10');

  write({ mgHost: 'h2', reply: 'v1', withFe2: true });
  const created = await apply('apply');
  assert.equal(created.filter((s) => s.startsWith('create workload')).length, 3);
  await answers(514, 'v1');
  assert.equal(await answer(22), undefined, 'the policy passes syslog, not ssh');
  const mg1 = readWorkload(LAB, W('mg1'))!;
  assert.deepEqual(await fipPorts(), [mg1.vmiUuid]);

  assert.deepEqual(await apply('apply'), [], 're-applying changes nothing');

  write({ mgHost: 'h2', reply: 'v2', withFe2: true });
  assert.deepEqual(await apply('apply'), [`update workload ${W('mg1')} (command)`]);
  await answers(514, 'v2');
  assert.deepEqual(programLeft(mg1.process!.pid), [], 'the old program is gone');
  assert.equal(readWorkload(LAB, W('mg1'))!.vmiUuid, mg1.vmiUuid, 'same port');

  write({ mgHost: 'h1', reply: 'v2', withFe2: false });
  assert.deepEqual(await apply('apply'), [`replace workload ${W('mg1')} (host)`, `delete workload ${W('fe2')}`]);
  const moved = readWorkload(LAB, W('mg1'))!;
  assert.equal(moved.host, 'h1');
  assert.notEqual(moved.vmiUuid, mg1.vmiUuid);
  assert.deepEqual(await fipPorts(), [moved.vmiUuid], 'the floating IP follows the new port');
  await answers(514, 'v2');
  assert.equal(readWorkload(LAB, W('fe2')), undefined);
  assert.doesNotMatch((await run('ip', ['netns', 'list'])).stdout, new RegExp(`^${W('fe2')}\\b`, 'm'));
  assert.deepEqual(await apply('apply'), [], 'and then nothing changes');

  const removed = await apply('delete');
  assert.equal(removed.length, 9, removed.join("; "));
  assert.deepEqual(programLeft(moved.process!.pid), [], 'the program stopped with its workload');
  const namespaces = (await run('ip', ['netns', 'list'])).stdout;
  for (const w of ['fe1', 'mg1']) assert.doesNotMatch(namespaces, new RegExp(`^${W(w)}\\b`, 'm'));
  assert.match(namespaces, new RegExp(`^${W('hand1')}\\b`, 'm'), 'the hand-made workload stays');
  assert.ok(readWorkload(LAB, W('hand1')));
  const networks = JSON.parse((await cirrus('-o', 'json', 'network', 'list')).stdout) as { fq_name: string[] }[];
  assert.deepEqual(networks.map((n) => n.fq_name.at(-1)), ['hand']);
});
