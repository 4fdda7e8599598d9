// The first-run demo: `lab up --gateway --demo` applies examples/demo.yaml to the lab: its
// web server answers from red, through the pass-all policy from green, and from the outside
// namespace through the gateway and service-1's floating IP; a second run and a
// plain `apply -f` of the same file change nothing; the syslog seed example applies beside
// it, and the Kubernetes-like one (an ECMP service address over two back ends); `lab down`
// removes it all, the web server included. Uses the examples' fixed
// workload names (service-1, fe-1, ...), so it needs them free on this machine.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { DEMO_FILE, demoWorkloads } from '../../src/lab/demo.js';
import { processGroup } from '../../src/lab/processes.js';
import { readWorkload } from '../../src/lab/state.js';
import { pollUntil } from '../../src/util/poll.js';
import { CIRRUS, REPO, freePort } from '../support/server.js';

if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

const LAB = `d${process.pid}`;
const run = promisify(execFile);
const cirrus = (...args: string[]) => run(process.execPath, [CIRRUS, ...args], { timeout: 120_000 });
const fetchIn = (w: string, url: string) => cirrus('lab', 'exec', w, '--name', LAB, '--', 'curl', '-s', '-m', '2', url).then((r) => r.stdout, () => undefined);

after(async () => {
  await cirrus('lab', 'down', '--name', LAB).catch(() => undefined);
});

test('lab up --gateway --demo applies examples/demo.yaml, idempotently; service-1 serves red, green and the outside; the seed examples beside it; lab down removes it', async () => {
  const port = String(await freePort());
  const api = `http://127.0.0.1:${port}`;
  const first = await cirrus('lab', 'up', '--hosts', '2', '--gateway', '--demo', '--name', LAB, '--api-port', port);
  for (const w of demoWorkloads()) assert.match(first.stderr, new RegExp(`workload ${w.name} on ${w.host}: ${w.address!.replace(/\./g, '\\.')} in ${w.network}`));
  assert.match(first.stderr, /created floating-ip public:floating-ip-pool:service-1/);
  assert.match(first.stdout, /try:/);
  const ping = await cirrus('lab', 'exec', 'client-1', '--name', LAB, '--', 'ping', '-c', '1', '-W', '2', '192.168.10.10');
  assert.match(ping.stdout, /1 received/);
  // The server was started by the apply: it answers once python has bound its port.
  for (const from of ['client-1', 'green-1']) {
    const page = await pollUntil(`${from} gets service-1's page`, () => fetchIn(from, 'http://192.168.10.10/'), { timeoutMs: 15_000, intervalMs: 200 });
    assert.match(page, /Directory listing/);
  }
  const outside = await pollUntil('the outside gets the page through the floating IP', () => fetchIn('outside', 'http://203.0.113.10/'), { timeoutMs: 15_000, intervalMs: 200 });
  assert.match(outside, /Directory listing/);

  const again = await cirrus('lab', 'up', '--hosts', '2', '--gateway', '--demo', '--name', LAB, '--api-port', port);
  assert.doesNotMatch(again.stderr, /workload .* on h/, 'the second run creates nothing');
  assert.match(again.stderr, /nothing to change/);
  const plan = await run(process.execPath, [CIRRUS, 'apply', '-f', DEMO_FILE, '--lab', LAB, '--dry-run']);
  assert.match(plan.stdout, /plan: 0 to create, 0 to update, 0 to replace, 0 to delete, \d+ unchanged/);

  const env = { ...process.env, CIRRUS_API: api };
  const ports = JSON.parse((await run(process.execPath, [CIRRUS, '-o', 'json', 'port', 'list'], { env })).stdout) as unknown[];
  assert.equal(ports.length, demoWorkloads().length);
  const fips = (await (await fetch(`${api}/floating-ips?detail=True`)).json()) as { 'floating-ips': { 'floating-ip': { floating_ip_address: string; virtual_machine_interface_refs: { to: string[] }[] } }[] };
  assert.deepEqual(
    fips['floating-ips'].map((f) => [f['floating-ip'].floating_ip_address, f['floating-ip'].virtual_machine_interface_refs.map((r) => r.to.at(-1))]),
    [['203.0.113.10', ['service-1-eth0']]],
  );

  // The syslog seed example beside it, in its own project: logs pass, ssh does not.
  const syslog = path.join(REPO, 'examples/syslog-management.yaml');
  await cirrus('apply', '-f', syslog, '--lab', LAB);
  const tcp = (port: number) =>
    cirrus('lab', 'exec', 'fe-1', '--name', LAB, '--', 'python3', '-c', `import socket; socket.create_connection(('10.42.0.10', ${port}), timeout=1).sendall(b'<13>hi')`).then(() => true, () => false);
  await pollUntil('fe-1 reaches syslog-1:514', async () => ((await tcp(514)) ? true : undefined), { timeoutMs: 15_000, intervalMs: 200 });
  assert.equal(await tcp(22), false, 'no ssh from the front end');
  assert.match((await cirrus('delete', '-f', syslog, '--lab', LAB)).stdout, /deleted project default-domain:syslog/);

  // The Kubernetes-like seed: the service address spreads new connections over both redis back ends.
  const k8s = path.join(REPO, 'examples/k8s-service.yaml');
  await cirrus('apply', '-f', k8s, '--lab', LAB);
  const answer = () =>
    cirrus('lab', 'exec', 'frontend-1', '--name', LAB, '--', 'python3', '-c', "import socket; print(socket.create_connection(('10.32.254.10', 6379), timeout=1).recv(64).decode())").then((r) => r.stdout.trim(), () => undefined);
  const seen = new Set<string>();
  await pollUntil('both redis back ends to answer the service address', async () => {
    const a = await answer();
    if (a) seen.add(a);
    return seen.size === 2 ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  assert.deepEqual([...seen].every((a) => a.startsWith('10.32.2.')), true, `back ends in the redis network: ${[...seen].join(', ')}`);
  await cirrus('delete', '-f', k8s, '--lab', LAB);

  const server = readWorkload(LAB, 'service-1')!.process!;
  await cirrus('lab', 'down', '--name', LAB);
  const left = (await run('ip', ['netns', 'list'])).stdout;
  for (const w of demoWorkloads()) assert.doesNotMatch(left, new RegExp(`^${w.name}\\b`, 'm'));
  assert.doesNotMatch(left, new RegExp(`^${LAB}-`, 'm'));
  const group = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d) && processGroup(Number(d)) === server.pid);
  assert.deepEqual(group, [], 'the web server (its whole process group) stopped with the lab');
});
