// Floating IPs, ECMP service addresses, source NAT and the gateway, on a lab of 3 hosts, a
// gateway host and the outside namespace: the outside reaches a workload through its
// floating IP (and sees it as the source of what the workload sends); an ECMP floating IP
// over back ends on 3 hosts spreads new connections and keeps each connection on its back
// end while back ends come and go; a network's SNAT lets its workloads out and nobody in;
// overlapping private addresses behind floating IPs; filtering still applies.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { AUTO_VNI_BASE } from '../../src/agent/dataplane/names.js';
import { pollUntil } from '../../src/util/poll.js';
import { TestLab } from '../support/lab.js';

if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

const lab = new TestLab('f');
const { name: LAB, w: W, cirrus, add, servers } = lab;
const run = promisify(execFile);
const OUTSIDE = `${LAB}-outside`;
const inNs = (ns: string, ...cmd: string[]) => run('ip', ['netns', 'exec', ns, ...cmd], { timeout: 60_000 });

/** A TCP server in `ns` on `port`: on connect it says "NAME PEER", then "NAME" for every line it gets. */
function serve(ns: string, name: string, port: number): void {
  const code = `
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', ${port})); s.listen(512)
def talk(c, peer):
    try:
        c.sendall(('${name} %s\\n' % peer[0]).encode())
        f = c.makefile('rb')
        for line in f:
            c.sendall(b'${name}\\n')
    except OSError:
        pass
    c.close()
while True:
    c, peer = s.accept()
    threading.Thread(target=talk, args=(c, peer), daemon=True).start()
`;
  servers.push(spawn('ip', ['netns', 'exec', ns, 'python3', '-c', code], { stdio: 'ignore' }));
}

/** The first line a server at `to`:`port` says to a new connection from `ns` (1 s), or undefined. */
const hello = (ns: string, to: string, port: number) =>
  inNs(ns, 'python3', '-c', `import socket; s=socket.create_connection(('${to}', ${port}), timeout=1); print(s.makefile().readline().strip())`).then((r) => r.stdout.trim(), () => undefined);

const reaches = (ns: string, to: string, port: number) => pollUntil(`${ns} reaches ${to}:${port}`, () => hello(ns, to, port), { timeoutMs: 20_000, intervalMs: 200 });

/** `count` new connections from `ns`, each a fresh source port: which back end answered each. */
async function spread(ns: string, to: string, port: number, count: number): Promise<Map<string, number>> {
  const code = `
import socket, collections
n = collections.Counter()
for i in range(${count}):
    try:
        s = socket.create_connection(('${to}', ${port}), timeout=1); n[s.makefile().readline().split()[0]] += 1; s.close()
    except OSError as e:
        n['error'] += 1
print(' '.join('%s=%d' % kv for kv in n.items()))`;
  const out = (await inNs(ns, 'python3', '-c', code)).stdout.trim();
  return new Map(out.split(' ').filter(Boolean).map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])]));
}

/**
 * Long-lived connections from `ns`: a python child holding `count` of them open, which on
 * every line "ask" on stdin asks each connection once and prints who answered ("-" when
 * the connection is dead).
 */
class Holder {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private readonly waiting: ((l: string) => void)[] = [];

  constructor(ns: string, to: string, port: number, count: number) {
    const code = `
import socket, sys
conns = []
for i in range(${count}):
    s = socket.create_connection(('${to}', ${port}), timeout=2); f = s.makefile('rb'); f.readline(); conns.append((s, f))
print('ready', flush=True)
for cmd in sys.stdin:
    out = []
    for s, f in conns:
        try:
            s.sendall(b'x\\n'); line = f.readline().decode().strip(); out.append(line or '-')
        except OSError:
            out.append('-')
    print(' '.join(out), flush=True)`;
    this.child = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    servers.push(this.child);
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const w = this.waiting.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
  }

  private next(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('holder: no answer within 30 s')), 30_000);
      this.waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  ready = () => this.next();

  async ask(): Promise<string[]> {
    this.child.stdin!.write('ask\n');
    return (await this.next()).split(' ');
  }
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`${lab.api}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text) as T;
}
const vmiOf = async (workload: string) => (await api<{ uuid: string }>('POST', '/fqname-to-id', { type: 'virtual-machine-interface', fq_name: ['default-domain', 'admin', `${W(workload)}-eth0`] })).uuid;
const fipUuid = async (address: string) => {
  const list = await api<{ 'floating-ips': { 'floating-ip': { uuid: string; floating_ip_address: string } }[] }>('GET', '/floating-ips?detail=True');
  return list['floating-ips'].find((f) => f['floating-ip'].floating_ip_address === address)!['floating-ip'].uuid;
};
/** The networks a host's agent has (TF's VRF introspect). */
const vrfs = async (host: string) =>
  (JSON.parse((await inNs(`${LAB}-${host}`, 'curl', '-s', '127.0.0.1:8085/vrfs')).stdout) as { vrfs: { name: string }[] }).vrfs.map((v) => v.name);
const backend = (op: 'ADD' | 'DELETE', fip: string, vmi: string) =>
  api('POST', '/ref-update', { type: 'floating-ip', uuid: fip, 'ref-type': 'virtual-machine-interface', 'ref-uuid': vmi, operation: op });

before(async () => {
  await lab.up(3, { gateway: true });
  for (const [n, cidr, ...flags] of [
    ['pub', '203.0.113.0/24', '--external'],
    ['red', '10.61.0.0/24'],
    ['svc', '10.96.0.0/24'],
    ['blue', '10.62.0.0/24'],
    ['ova', '10.50.0.0/24'],
    ['ovb', '10.50.0.0/24'],
  ] as const) {
    await cirrus('network', 'create', n, '--subnet', cidr, ...flags);
  }
  await add('r1', 'h1', 'red', '10.61.0.11');
  await add('r2', 'h2', 'red', '10.61.0.12');
  await add('r3', 'h3', 'red', '10.61.0.13');
  await add('r4', 'h1', 'red', '10.61.0.14');
  await add('c1', 'h1', 'blue', '10.62.0.11');
  await add('c2', 'h2', 'blue', '10.62.0.12');
  await add('oa', 'h1', 'ova', '10.50.0.10');
  await add('ob', 'h2', 'ovb', '10.50.0.10');
  for (const w of ['r1', 'r2', 'r3', 'r4', 'oa', 'ob']) serve(W(w), W(w), 8080);
  await cirrus('policy', 'create', 'blue-svc', '--rule', 'pass any blue <> svc');
  for (const n of ['blue', 'svc']) await cirrus('policy', 'attach', 'blue-svc', '--network', n);
  await cirrus('fip', 'create', '--pool', 'pub', '--ip', '203.0.113.11', '--port', `${W('r1')}-eth0`);
  await cirrus('fip', 'create', '--pool', 'pub', '--ip', '203.0.113.21', '--port', W('oa'));
  await cirrus('fip', 'create', '--pool', 'pub', '--ip', '203.0.113.22', '--port', W('ob'));
  await cirrus('fip', 'create', '--pool', 'svc', '--ip', '10.96.0.10', '--port', W('r1'), W('r2'), W('r3'));
});

after(() => lab.down());

test('the outside reaches a workload through its floating IP; the workload is seen from outside as its floating IP', async () => {
  // The workload sees the outside's own address; the outside talks to the floating IP (its replies come from there).
  assert.equal(await reaches(OUTSIDE, '203.0.113.11', 8080), `${W('r1')} 192.0.2.1`);
  const ping = await inNs(OUTSIDE, 'ping', '-c', '1', '-W', '2', '203.0.113.11');
  assert.match(ping.stdout, /from 203\.0\.113\.11/);
  // Its own connections to the outside leave with the floating IP as source.
  serve(OUTSIDE, 'outside', 9090);
  assert.equal(await reaches(W('r1'), '192.0.2.1', 9090), 'outside 203.0.113.11');
});

test('nothing else of the overlay is reachable from the outside', async () => {
  await reaches(OUTSIDE, '203.0.113.11', 8080);
  assert.equal(await hello(OUTSIDE, '10.61.0.11', 8080), undefined, "a workload's own address");
  assert.equal(await hello(OUTSIDE, '10.61.0.12', 8080), undefined, 'a workload without a floating IP');
  await assert.rejects(inNs(OUTSIDE, 'ping', '-c', '1', '-W', '1', '10.254.0.1'), 'the underlay behind the gateway');
});

test('a tunnel packet from the outside to the gateway is dropped, not decapsulated into the overlay', async () => {
  const gw = `${LAB}-gw`;
  const rx = async () => (JSON.parse((await inNs(gw, 'ip', '-j', '-s', 'link', 'show', 'cvx')).stdout) as { stats64: { rx: { packets: number } } }[])[0]!.stats64.rx.packets;
  const dropped = async () => {
    const chain = JSON.parse((await inNs(gw, 'nft', '-j', 'list', 'chain', 'ip', 'cirrus', 'pre')).stdout) as { nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[] };
    const rule = chain.nftables.find((x) => x.rule?.comment === 'tunnel from outside')!.rule!;
    return rule.expr.find((e) => e.counter)!.counter!.packets;
  };
  const pub = await api<{ 'virtual-network': { virtual_network_network_id: number } }>('GET', `/virtual-network/${(await api<{ uuid: string }>('POST', '/fqname-to-id', { type: 'virtual-network', fq_name: ['default-domain', 'admin', 'pub'] })).uuid}`);
  const vni = AUTO_VNI_BASE + pub['virtual-network'].virtual_network_network_id;
  const [rx0, dropped0] = [await rx(), await dropped()];
  // 20 VXLAN packets carrying a UDP datagram to the floating IP, sent straight to the gateway's outside address.
  const scapy = `from scapy.all import *; send(IP(dst='192.0.2.2')/UDP(sport=40000, dport=4789)/VXLAN(vni=${vni}, flags=0x08)/Ether()/IP(src='198.51.100.7', dst='203.0.113.11')/UDP(dport=8080)/b'x', count=20, verbose=0)`;
  await inNs(OUTSIDE, '/usr/bin/python3', '-c', scapy); // Debian's python3-scapy
  await pollUntil('20 tunnel packets dropped on the gateway', async () => ((await dropped()) - dropped0 >= 20 ? true : undefined), { timeoutMs: 5_000, intervalMs: 50 });
  assert.equal((await rx()) - rx0, 0, "the gateway's tunnel device received none of them");
});

test('an ECMP floating IP over 3 hosts: 300 new connections from another network spread, 20-47% each', async () => {
  await reaches(W('c2'), '10.96.0.10', 8080);
  const counts = await spread(W('c2'), '10.96.0.10', 8080, 300);
  assert.equal(counts.get('error'), undefined, `no connection failed: ${JSON.stringify([...counts])}`);
  for (const w of ['r1', 'r2', 'r3']) {
    const share = (counts.get(W(w)) ?? 0) / 300;
    assert.ok(share >= 0.2 && share <= 0.47, `${w} got ${(share * 100).toFixed(0)}%: ${JSON.stringify([...counts])}`);
  }
  // From a host with a back end of its own, the local one takes its share only.
  const local = await spread(W('c1'), '10.96.0.10', 8080, 150);
  for (const w of ['r1', 'r2', 'r3']) assert.ok((local.get(W(w)) ?? 0) >= 20, `from h1, ${w}: ${JSON.stringify([...local])}`);
});

test('cirrus trace explains a flow to a floating IP: the pool network, the back ends, the NAT', async () => {
  const out = (await cirrus('trace', W('c2'), '10.96.0.10', '--proto', 'tcp', '--port', '8080')).stdout;
  assert.match(out, /ECMP service address: each new connection picks one of 3 back ends/);
  assert.match(out, /policies of default-domain:admin:svc \(destination side\)/);
  assert.match(out, /verdict: pass; NAT: destination 10\.96\.0\.10 → 10\.61\.0\.11 .*10\.61\.0\.12 .*10\.61\.0\.13/);
});

test('long-lived connections stay on their back end as back ends are added and removed; a removed one takes no new connection', async () => {
  await reaches(W('c2'), '10.96.0.10', 8080);
  const holder = new Holder(W('c2'), '10.96.0.10', 8080, 20);
  assert.equal(await holder.ready(), 'ready');
  const first = await holder.ask();
  assert.ok(first.every((b) => b !== '-'), `all 20 answer: ${first.join(' ')}`);
  assert.ok(first.includes(W('r1')), `some of the 20 connections are on r1: ${first.join(' ')}`);
  assert.ok((await vrfs('h3')).some((v) => v.endsWith(':svc')), 'h3 has a back end of svc');
  const fip = await fipUuid('10.96.0.10');
  // A fourth back end (on h1, beside r1): no existing connection moves.
  await backend('ADD', fip, await vmiOf('r4'));
  await pollUntil('r4 taking new connections', async () => ((await spread(W('c2'), '10.96.0.10', 8080, 20)).get(W('r4')) ? true : undefined), { timeoutMs: 20_000, intervalMs: 200 });
  assert.deepEqual(await holder.ask(), first, 'after adding a back end, every connection has the same one');
  // r3 goes: its connections end, the others stay where they were.
  const removedAt = Date.now();
  await backend('DELETE', fip, await vmiOf('r3'));
  await pollUntil('r3 no longer chosen', async () => ((await spread(W('c2'), '10.96.0.10', 8080, 30)).get(W('r3')) ? undefined : true), { timeoutMs: 20_000, intervalMs: 50 });
  const failover = Date.now() - removedAt;
  const after = await holder.ask();
  for (let i = 0; i < first.length; i++) {
    if (first[i] === W('r3')) assert.equal(after[i], '-', `connection ${i} was on the removed back end`);
    else assert.equal(after[i], first[i], `connection ${i} stays on ${first[i]}`);
  }
  console.log(`# r3 removed: no new connection chooses it after ${failover} ms (30 connections per probe)`);
  // h3 had no other back end: after forwarding to the others for a moment (make before break), it forgets svc.
  await pollUntil('h3 forgets svc', async () => ((await vrfs('h3')).some((v) => v.endsWith(':svc')) ? undefined : true), { timeoutMs: 15_000, intervalMs: 200 });
  // r1 goes while h1 keeps r4: r1's connections end (their translations are forgotten), the others stay.
  await backend('DELETE', fip, await vmiOf('r1'));
  await pollUntil('r1 no longer chosen', async () => ((await spread(W('c2'), '10.96.0.10', 8080, 30)).get(W('r1')) ? undefined : true), { timeoutMs: 20_000, intervalMs: 50 });
  const asked = Date.now();
  const last = await holder.ask();
  // Reset (their next packet finds no translation and reaches another back end), not left to time out (2 s each).
  assert.ok(Date.now() - asked < 2_000, `r1's connections end at once: asking took ${Date.now() - asked} ms`);
  for (let i = 0; i < first.length; i++) {
    if (first[i] === W('r1') || first[i] === W('r3')) assert.equal(last[i], '-', `connection ${i} was on a removed back end`);
    else assert.equal(last[i], first[i], `connection ${i} stays on ${first[i]}`);
  }
});

test('SNAT: a network with --snat on reaches the outside as the gateway; the outside cannot open connections in', async () => {
  serve(OUTSIDE, 'outside', 9091);
  assert.equal(await hello(W('r2'), '192.0.2.1', 9091), undefined, 'before SNAT, no way out');
  await cirrus('network', 'set', 'red', '--snat', 'on');
  assert.equal(await reaches(W('r2'), '192.0.2.1', 9091), 'outside 192.0.2.2');
  assert.equal(await hello(OUTSIDE, '10.61.0.12', 8080), undefined);
  // The floating IP still names the workload that has one.
  assert.equal(await hello(W('r1'), '192.0.2.1', 9091), 'outside 203.0.113.11');
  await cirrus('network', 'set', 'red', '--snat', 'off');
  await pollUntil('SNAT off', async () => ((await hello(W('r2'), '192.0.2.1', 9091)) === undefined ? true : undefined), { timeoutMs: 20_000, intervalMs: 200 });
});

test('the same private address in two networks, each behind its floating IP, both reached at once', async () => {
  await reaches(OUTSIDE, '203.0.113.21', 8080);
  await reaches(OUTSIDE, '203.0.113.22', 8080);
  const both = await Promise.all(Array.from({ length: 10 }, (_, i) => hello(OUTSIDE, i % 2 ? '203.0.113.22' : '203.0.113.21', 8080)));
  both.forEach((answer, i) => assert.equal(answer, `${W(i % 2 ? 'ob' : 'oa')} 192.0.2.1`));
});

test('a floating IP does not bypass filtering: security groups of the back end and policies apply', async () => {
  await reaches(OUTSIDE, '203.0.113.11', 8080);
  await cirrus('sg', 'create', 'only-ssh', '--rule', 'ingress tcp any 22', '--rule', 'egress any any');
  await cirrus('sg', 'attach', 'only-ssh', '--port', `${W('r1')}-eth0`);
  await pollUntil('the group to close port 8080', async () => ((await hello(OUTSIDE, '203.0.113.11', 8080)) === undefined ? true : undefined), { timeoutMs: 20_000, intervalMs: 200 });
  await cirrus('sg', 'detach', 'only-ssh', '--port', `${W('r1')}-eth0`);
  await reaches(OUTSIDE, '203.0.113.11', 8080);
  // The service network's policy decides, not the back end's network's: deny one port to blue.
  await cirrus('policy', 'create', 'svc-no-8080', '--rule', 'deny tcp blue > svc 8080', '--rule', 'pass any blue <> svc');
  await cirrus('policy', 'detach', 'blue-svc', '--network', 'svc');
  await cirrus('policy', 'attach', 'svc-no-8080', '--network', 'svc');
  await pollUntil('svc policy to deny 8080', async () => ((await hello(W('c2'), '10.96.0.10', 8080)) === undefined ? true : undefined), { timeoutMs: 20_000, intervalMs: 200 });
});
