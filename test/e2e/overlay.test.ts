// Networks that span hosts, on a 3-host lab with two control nodes: workloads of one
// network on different hosts reach each other over the VXLAN overlay (ping and TCP), the
// same subnet in two networks spanning the same hosts keeps them apart, networks stay
// isolated across hosts unless a policy connects them, a workload moved to another host
// with the same address is reachable again, a control node killed under a continuous ping
// loses nothing, and with every control node down forwarding goes on (new ports work once
// one is back).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { pollUntil } from '../../src/util/poll.js';
import type { LabStatus } from '../../src/lab/status.js';
import { TestLab } from '../support/lab.js';

if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

const lab = new TestLab('o');
const { name: LAB, w: W, cirrus, add, servers } = lab;
const inside = (w: string, ...cmd: string[]) => cirrus('lab', 'exec', W(w), '--name', LAB, '--', ...cmd);
const pings = (from: string, to: string) => inside(from, 'ping', '-c', '1', '-W', '1', to).then(() => true, () => false);
const waitPing = (from: string, to: string) => pollUntil(`${from} pings ${to}`, async () => ((await pings(from, to)) ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });

/** A TCP server answering how many bytes it received, inside workload `w` (port 7001). */
function count(w: string): void {
  const code = `import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 7001)); s.listen(16)\nwhile True:\n  c,_=s.accept(); n=0\n  while True:\n    d=c.recv(65536)\n    if not d: break\n    n+=len(d)\n  c.sendall(str(n).encode()); c.close()`;
  servers.push(spawn('ip', ['netns', 'exec', W(w), 'python3', '-c', code], { stdio: 'ignore' }));
}

/** A TCP server answering its own name, inside workload `w`. */
function serve(w: string): void {
  const code = `import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 7000)); s.listen(16)\nwhile True:\n  c,_=s.accept(); c.sendall(b'${W(w)}'); c.close()`;
  servers.push(spawn('ip', ['netns', 'exec', W(w), 'python3', '-c', code], { stdio: 'ignore' }));
}
const tcp = (from: string, to: string) =>
  inside(from, 'python3', '-c', `import socket; s=socket.create_connection(('${to}', 7000), timeout=2); print(s.recv(64).decode())`).then(
    (r) => r.stdout.trim(),
    () => undefined,
  );

before(async () => {
  await lab.up(3);
  await cirrus('network', 'create', 'red', '--subnet', '10.10.0.0/24');
  await cirrus('network', 'create', 'blue', '--subnet', '10.10.0.0/24');
  await cirrus('network', 'create', 'green', '--subnet', '10.30.0.0/24');
  await add('r1', 'h1', 'red', '10.10.0.3');
  await add('r2', 'h2', 'red', '10.10.0.4');
  await add('b1', 'h1', 'blue', '10.10.0.4');
  await add('b2', 'h2', 'blue', '10.10.0.3');
  await add('b3', 'h2', 'blue', '10.10.0.20');
  await add('r3', 'h3', 'red', '10.10.0.30');
  await add('g3', 'h3', 'green', '10.30.0.5');
  await add('g1', 'h1', 'green', '10.30.0.6');
  for (const w of ['r2', 'b1', 'b3', 'g3']) serve(w);
  count('b3');
});

after(() => lab.down());

test('one network on three hosts: ping and TCP over the overlay, both ways', async () => {
  await waitPing('r1', '10.10.0.4');
  await waitPing('r2', '10.10.0.3');
  await waitPing('r3', '10.10.0.3');
  await waitPing('r2', '10.10.0.30');
  // TF's route introspect on h1 shows the remote address as a VXLAN tunnel to h2.
  const vrfs = JSON.parse((await cirrus('lab', 'exec', 'h1', '--name', LAB, '--', 'curl', '-s', '127.0.0.1:8085/vrfs')).stdout) as { vrfs: { name: string; network_id: number }[] };
  const red = vrfs.vrfs.find((v) => v.name.endsWith(':red'))!;
  const xml = (await cirrus('lab', 'exec', 'h1', '--name', LAB, '--', 'curl', '-s', `127.0.0.1:8085/Snh_Inet4UcRouteReq?vrf_index=${red.network_id}&src_ip=10.10.0.4`)).stdout;
  assert.match(xml, /<type type="string">tunnel<\/type>/);
  assert.match(xml, /<dip type="string">10\.254\.0\.2<\/dip>/);
  await pollUntil('TCP r1 -> r2', async () => ((await tcp('r1', '10.10.0.4')) === W('r2') ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });
  // Tunnel packets are not tracked (only the connections inside them are): no conntrack entry for the VXLAN port on either host.
  for (const h of ['h1', 'h2']) {
    const { stdout } = await cirrus('lab', 'exec', h, '--name', LAB, '--', 'conntrack', '-L', '-p', 'udp', '--dport', '4789');
    assert.equal(stdout.trim(), '', `${h} tracks tunnel packets`);
  }
});

test('the same subnet in two networks spanning the same hosts: each reaches its own peer', async () => {
  await waitPing('b2', '10.10.0.4');
  assert.equal(await tcp('b2', '10.10.0.4'), W('b1'), 'blue 10.10.0.3 on h2 reaches blue 10.10.0.4 on h1, not red 10.10.0.4 on h2');
  assert.equal(await tcp('r1', '10.10.0.4'), W('r2'), 'red 10.10.0.3 on h1 reaches red 10.10.0.4 on h2, not blue 10.10.0.4 on h1');
});

test('networks stay isolated across hosts', async () => {
  await waitPing('b1', '10.10.0.20');
  assert.equal(await pings('r1', '10.10.0.20'), false, 'red cannot ping a blue-only address on another host');
  assert.equal(await tcp('r1', '10.10.0.20'), undefined, 'nor connect to it');
});

test('a workload moved to another host with the same address is reachable again', async () => {
  await cirrus('lab', 'workload', 'del', W('r2'), '--name', LAB);
  await add('r2', 'h1', 'red', '10.10.0.4');
  serve('r2');
  await waitPing('r1', '10.10.0.4');
  await pollUntil('TCP r1 -> moved r2', async () => ((await tcp('r1', '10.10.0.4')) === W('r2') ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });
});

test('a packet too big for the overlay gets ICMP frag-needed back; a large TCP transfer crosses hosts', async () => {
  // A workload (blue, h1) whose MTU was raised to 1500 behind Cirrus's back sends a
  // full-size packet with DF to h2: its host answers "fragmentation needed" (with the
  // overlay's MTU), not silence.
  await inside('b1', 'ip', 'link', 'set', 'eth0', 'mtu', '1500');
  try {
    const r = await inside('b1', 'ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1472', '10.10.0.20').catch((e: { stdout: string; stderr: string }) => e);
    assert.match(`${r.stdout}${r.stderr}`, /[Ff]rag needed|mtu = 1450|Message too long/, 'frag-needed came back');
    // And a large TCP transfer across hosts completes.
    const big = await inside('b1', 'python3', '-c', "import socket; s=socket.create_connection(('10.10.0.20', 7001), timeout=5); s.sendall(b'x'*200000); s.shutdown(1); print(s.recv(64).decode())").catch(() => undefined);
    assert.equal(big?.stdout.trim(), '200000');
  } finally {
    await inside('b1', 'ip', 'link', 'set', 'eth0', 'mtu', '1450');
  }
});

test("a network's configured VNI is what its tunnels carry, and changing it keeps the network reachable", async () => {
  const uuid = (await fetch(`${lab.api}/fqname-to-id`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'virtual-network', fq_name: ['default-domain', 'admin', 'blue'] }) }).then((r) => r.json()) as { uuid: string }).uuid;
  const tunnelVni = async () => {
    const routes = JSON.parse((await cirrus('lab', 'exec', 'h1', '--name', LAB, '--', 'curl', '-s', `127.0.0.1:8085/routes?vrf=${uuid}`)).stdout) as { routes: { dst: string; id?: number }[] };
    return routes.routes.find((r) => r.dst === '10.10.0.20')?.id;
  };
  for (const vni of [4242, 4343]) {
    const r = await fetch(`${lab.api}/virtual-network/${uuid}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ 'virtual-network': { virtual_network_properties: { vxlan_network_identifier: vni } } }) });
    assert.equal(r.status, 200, await r.text());
    await pollUntil(`tunnel with VNI ${vni}`, async () => ((await tunnelVni()) === vni ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });
    await waitPing('b1', '10.10.0.20');
    assert.equal(await tcp('b1', '10.10.0.20'), W('b3'));
  }
});

test('two networks talk across hosts only while a policy of each lets them', async () => {
  const tcpTo = (want: string) => pollUntil(`TCP r1 -> g3 ${want}`, async () => ((await tcp('r1', '10.30.0.5')) === want ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });
  await waitPing('g1', '10.30.0.5');
  assert.equal(await pings('r1', '10.30.0.5'), false, 'red and green: isolated by default');
  await cirrus('policy', 'create', 'red-green', '--rule', 'pass any red <> green');
  await cirrus('policy', 'attach', 'red-green', '--network', 'red');
  assert.equal(await pings('r1', '10.30.0.5'), false, 'one side allowing is not enough');
  await cirrus('policy', 'attach', 'red-green', '--network', 'green');
  await waitPing('r1', '10.30.0.5');
  await tcpTo(W('g3'));
  await waitPing('g3', '10.10.0.30');
  assert.equal(await pings('b1', '10.30.0.5'), false, 'blue, not named by the policy, stays out');
  await cirrus('policy', 'detach', 'red-green', '--network', 'green');
  await pollUntil('red and green isolated again', async () => ((await pings('r1', '10.30.0.5')) ? undefined : true), { timeoutMs: 15_000, intervalMs: 100 });
});

/** The lab's control nodes (name, pid), from `lab status`. */
async function controlPids(): Promise<Map<string, number>> {
  const s = JSON.parse((await cirrus('-o', 'json', 'lab', 'status', '--name', LAB)).stdout) as LabStatus;
  return new Map(s.controls.filter((c) => c.process.running).map((c) => [c.name, c.process.pid!]));
}

/** A ping of ~5 s (250 packets, 20 ms apart) from `from` to `to`; resolves to its summary line. */
function continuousPing(from: string, to: string): Promise<string> {
  return inside(from, 'ping', '-q', '-i', '0.02', '-c', '250', '-W', '1', to).then(
    (r) => r.stdout,
    (e: { stdout: string }) => e.stdout,
  );
}

test('kill -9 of a control node under a continuous cross-host ping: no loss, and the survivor keeps updating agents', async () => {
  const pids = await controlPids();
  assert.equal(pids.size, 2, 'two control nodes run');
  const ping = continuousPing('r1', '10.10.0.30');
  process.kill(pids.get('c1')!, 'SIGKILL');
  // A port made while c1 is dead reaches the other hosts through c2.
  await add('r4', 'h2', 'red', '10.10.0.40');
  await waitPing('r3', '10.10.0.40');
  const summary = await ping;
  assert.match(summary, / 0% packet loss/, summary);
  assert.match(summary, /250 packets transmitted/, summary);
});

test('with every control node down forwarding goes on; ports added after one is back work', async () => {
  const pids = await controlPids();
  const ping = continuousPing('r3', '10.10.0.3');
  for (const pid of pids.values()) process.kill(pid, 'SIGKILL');
  const summary = await ping;
  assert.match(summary, / 0% packet loss/, `headless: ${summary}`);
  await cirrus('lab', 'up', '--hosts', '3', '--name', LAB);
  assert.equal((await controlPids()).size, 2, 'lab up restarted both control nodes');
  await add('r5', 'h1', 'red', '10.10.0.50');
  await waitPing('r3', '10.10.0.50');
  await waitPing('r5', '10.10.0.40');
});
