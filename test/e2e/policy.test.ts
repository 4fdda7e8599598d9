// Network policies enforced in the kernel, on a 2-host lab: the seed's "front-end sends
// its logs to the management network's syslog, but cannot ssh there", directions `>` and
// `<>` for tcp, udp and icmp, a deny inside a network, the seed's pass-all policy between
// two networks, a policy change cutting an existing connection (as OpenContrail
// re-evaluates flows), overlapping subnets kept apart; anti-spoofing (source address, MAC,
// ARP; allowed address pairs) and the host's protection from its workloads.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { pollUntil } from '../../src/util/poll.js';
import { TestLab } from '../support/lab.js';

if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

const lab = new TestLab('p');
const { name: LAB, w: W, cirrus, add, servers } = lab;
const run = promisify(execFile);
const inside = (w: string, ...cmd: string[]) => run('ip', ['netns', 'exec', W(w), ...cmd], { timeout: 20_000 });
const policy = async (name: string, rules: string[], networks: string[]) => {
  await cirrus('policy', 'create', name, ...rules.flatMap((r) => ['--rule', r]));
  for (const n of networks) await cirrus('policy', 'attach', name, '--network', n);
};

/** Answers its own name on every given TCP and UDP port, inside workload `w`. */
function serve(w: string, tcp: number[], udp: number[] = []): void {
  const code = `
import socket, select
socks = []
for p in ${JSON.stringify(tcp)}:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', p)); s.listen(16); socks.append(s)
for p in ${JSON.stringify(udp)}:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', p)); socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        if s.type == socket.SOCK_STREAM:
            c, _ = s.accept(); c.sendall(b'${W(w)}'); c.close()
        else:
            _, peer = s.recvfrom(100); s.sendto(b'${W(w)}', peer)
`;
  servers.push(spawn('ip', ['netns', 'exec', W(w), 'python3', '-c', code], { stdio: 'ignore' }));
}

/** What answers `proto` `to`:`port` from workload `from` (one attempt, 1 s), or undefined. */
async function reach(from: string, proto: 'tcp' | 'udp' | 'icmp', to: string, port = 0): Promise<string | undefined> {
  if (proto === 'icmp') return (await inside(from, 'ping', '-c', '1', '-W', '1', to).then(() => 'pong', () => undefined));
  const code =
    proto === 'tcp'
      ? `import socket; s=socket.create_connection(('${to}', ${port}), timeout=1); print(s.recv(64).decode())`
      : `import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b'x', ('${to}', ${port})); print(s.recv(64).decode())`;
  return inside(from, 'python3', '-c', code).then((r) => r.stdout.trim(), () => undefined);
}

/** Waits until `from` reaches the target (what a policy change needs to take effect). */
const reaches = (from: string, proto: 'tcp' | 'udp' | 'icmp', to: string, port = 0) =>
  pollUntil(`${from} reaches ${proto} ${to}:${port}`, async () => (await reach(from, proto, to, port)), { timeoutMs: 15_000, intervalMs: 100 });
/** Waits until `from` no longer reaches the target. */
const blocked = (from: string, proto: 'tcp' | 'udp' | 'icmp', to: string, port = 0) =>
  pollUntil(`${from} blocked from ${proto} ${to}:${port}`, async () => ((await reach(from, proto, to, port)) === undefined ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });

before(async () => {
  await lab.up(2);
  for (const [n, cidr] of [['frontend', '10.41.0.0/24'], ['mgmt', '10.42.0.0/24'], ['red', '10.43.0.0/24'], ['green', '10.44.0.0/24'], ['blue', '10.41.0.0/24']] as const) {
    await cirrus('network', 'create', n, '--subnet', cidr);
  }
  await add('fe1', 'h1', 'frontend', '10.41.0.10');
  await add('fe2', 'h2', 'frontend', '10.41.0.11');
  await add('mg1', 'h2', 'mgmt', '10.42.0.10');
  await add('r1', 'h1', 'red', '10.43.0.10');
  await add('g1', 'h2', 'green', '10.44.0.10');
  await add('b1', 'h2', 'blue', '10.41.0.10');
  serve('mg1', [514, 22], [514]);
  serve('fe1', [7000, 7001]);
  serve('fe2', [7000, 7001]);
  serve('g1', [80]);
  serve('r1', [80]);
  await policy('syslog', ['pass tcp frontend > mgmt 514', 'pass udp frontend > mgmt 514'], ['frontend', 'mgmt']);
});

after(() => lab.down());

test("the seed's syslog-but-not-ssh: frontend reaches mgmt's tcp and udp 514, not ssh, not ping; mgmt cannot connect back", async () => {
  assert.equal(await reaches('fe1', 'tcp', '10.42.0.10', 514), W('mg1'), 'across hosts, tcp 514 passes (and its replies)');
  assert.equal(await reaches('fe1', 'udp', '10.42.0.10', 514), W('mg1'), 'udp 514 passes, the reply too');
  assert.equal(await reach('fe1', 'tcp', '10.42.0.10', 22), undefined, 'ssh is denied');
  assert.equal(await reach('fe1', 'icmp', '10.42.0.10'), undefined, 'ping is denied');
  assert.equal(await reach('mg1', 'tcp', '10.41.0.10', 7000), undefined, "'>': mgmt cannot open connections to frontend");
  assert.equal(await reach('fe2', 'tcp', '10.42.0.10', 514), W('mg1'), 'the same from a frontend workload on the same host as mg1');
  assert.equal(await reach('fe2', 'tcp', '10.42.0.10', 22), undefined);
  // `cirrus trace` says the same from the configuration, naming the deciding rules.
  const trace = async (...args: string[]) => JSON.parse((await cirrus('-o', 'json', 'trace', W('fe1'), W('mg1'), ...args)).stdout) as { verdict: string; path: string[]; checks: { what: string; verdict: string; rule: string }[] };
  const syslog = await trace('--proto', 'tcp', '--port', '514');
  assert.equal(syslog.verdict, 'pass');
  assert.match(syslog.path.join('\n'), /h1 → h2: VXLAN to 10\.254\.0\.2 with VNI \d+/);
  assert.deepEqual(syslog.checks.map((c) => c.verdict), ['pass', 'pass'], 'frontend (source side), mgmt (destination side)');
  const ssh = await trace('--proto', 'tcp', '--port', '22');
  assert.equal(ssh.verdict, 'drop');
  assert.deepEqual([ssh.checks[0]!.verdict, ssh.checks[0]!.rule], ['drop', 'default']);
  // h2's introspect counts what each rule decided: the 514 rule passed, the default dropped ssh.
  const introspect = async (path: string) => JSON.parse((await cirrus('lab', 'exec', 'h2', '--name', LAB, '--', 'curl', '-s', `127.0.0.1:8085${path}`)).stdout);
  const policies = (await introspect('/policies')) as { networks: { name: string; rules: { uuid: string; dports?: number[][] }[] }[] };
  const mgmt = policies.networks.find((n) => n.name.endsWith(':mgmt'))!;
  const tcp514 = mgmt.rules.find((r) => r.dports?.[0]?.[0] === 514)!;
  const hits = (await introspect('/acl-hits')) as { hits: { rule: string; side?: string; network?: string; verdict: string; packets: number }[] };
  const of = (side: string, net: string) => hits.hits.filter((h) => h.side === side && h.network?.endsWith(`:${net}`));
  assert.ok(of('in', 'mgmt').some((h) => h.rule === tcp514.uuid && h.verdict === 'pass' && h.packets > 0), "mgmt's side counted the 514 connections");
  assert.ok(of('out', 'frontend').some((h) => h.rule === 'default' && h.verdict === 'drop' && h.packets > 0), "fe2's ssh attempt was dropped by frontend's default, at its source");
});

test("'<>' passes both ways; a deny inside a network stops only what it names", async () => {
  await policy('ping-both', ['pass icmp frontend <> mgmt'], ['frontend', 'mgmt']);
  await reaches('fe1', 'icmp', '10.42.0.10');
  await reaches('mg1', 'icmp', '10.41.0.10');
  assert.equal(await reach('fe1', 'tcp', '10.41.0.11', 7000), W('fe2'), 'inside a network everything passes by default');
  await policy('no-7000', ['deny tcp frontend > frontend 7000'], ['frontend']);
  await blocked('fe1', 'tcp', '10.41.0.11', 7000);
  assert.equal(await reach('fe1', 'tcp', '10.41.0.11', 7001), W('fe2'), 'port 7001 still passes');
  assert.equal(await reach('fe1', 'icmp', '10.41.0.11'), 'pong');
});

test("the seed's pass-all policy between two networks; detaching it from one side isolates them again", async () => {
  assert.equal(await reach('r1', 'tcp', '10.44.0.10', 80), undefined, 'isolated by default');
  await policy('all', ['pass any red <> green'], ['red', 'green']);
  assert.equal(await reaches('r1', 'tcp', '10.44.0.10', 80), W('g1'));
  assert.equal(await reaches('g1', 'tcp', '10.43.0.10', 80), W('r1'));
  await reaches('g1', 'icmp', '10.43.0.10');
  await cirrus('policy', 'detach', 'all', '--network', 'green');
  await blocked('r1', 'tcp', '10.44.0.10', 80);
  await blocked('r1', 'icmp', '10.44.0.10');
});

test('a policy change cuts an existing connection it no longer allows (flows are judged again)', async () => {
  // A connection that stays open and answers each line it gets with its length.
  const code = `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 515)); s.listen(1)
c, _ = s.accept()
while True:
    d = c.recv(100)
    if not d: break
    c.sendall(str(len(d)).encode())
`;
  servers.push(spawn('ip', ['netns', 'exec', W('mg1'), 'python3', '-c', code], { stdio: 'ignore' }));
  await policy('log515', ['pass tcp frontend > mgmt 515'], ['frontend', 'mgmt']);
  // The client keeps one connection and prints "ok" per answered line, "cut" when one is not answered in 1 s.
  const client = spawn('ip', ['netns', 'exec', W('fe1'), 'python3', '-u', '-c', `
import socket, sys, time
for attempt in range(150):
    try:
        s = socket.create_connection(('10.42.0.10', 515), timeout=1); break
    except OSError: time.sleep(0.1)
s.settimeout(1)
while True:
    line = sys.stdin.readline()
    if not line: break
    try:
        s.sendall(b'x'); s.recv(10); print('ok')
    except OSError: print('cut')
`], { stdio: ['pipe', 'pipe', 'ignore'] });
  servers.push(client);
  const answers: string[] = [];
  let partial = '';
  client.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    answers.push(...lines);
  });
  const ask = async () => {
    const n = answers.length;
    client.stdin!.write('\n');
    return pollUntil('an answer from the client', () => (answers.length > n ? answers.at(-1) : undefined), { timeoutMs: 20_000, intervalMs: 20 });
  };
  assert.equal(await ask(), 'ok', 'the connection works');
  await cirrus('policy', 'detach', 'log515', '--network', 'mgmt');
  await pollUntil('the existing connection is cut', async () => ((await ask()) === 'cut' ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });
});

test('overlapping subnets: blue reuses frontend\'s addresses and gets none of its policies', async () => {
  assert.equal(await reach('fe1', 'tcp', '10.42.0.10', 514), W('mg1'));
  assert.equal(await reach('b1', 'tcp', '10.42.0.10', 514), undefined, 'blue 10.41.0.10, same address as fe1, is not frontend');
  assert.equal(await reach('b1', 'icmp', '10.41.0.11'), undefined, 'nor does it reach frontend workloads');
});

/** Datagrams from `from`, sent from source address `src` (bound), as seen by a listener in `to` (a set of sources). */
async function udpSources(from: string, src: string, to: string, toAddr: string, port: number): Promise<string[]> {
  const listener = spawn('ip', ['netns', 'exec', W(to), 'python3', '-u', '-c', `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', ${port})); s.settimeout(3)
print('ready')
try:
    while True:
        _, peer = s.recvfrom(100); print(peer[0])
except socket.timeout: pass
`], { stdio: ['ignore', 'pipe', 'ignore'] });
  servers.push(listener);
  let out = '';
  listener.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise((r) => listener.once('exit', r));
  await pollUntil('listener ready', () => (out.includes('ready') ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
  await inside(from, 'python3', '-c', `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_IP, 19, 1); s.bind(('${src}', 0))
for i in range(5):
    s.sendto(b'x', ('${toAddr}', ${port})); time.sleep(0.05)
`);
  await done;
  return [...new Set(out.split('\n').slice(1).filter(Boolean))];
}

test('anti-spoofing: a foreign source address or MAC is dropped; an allowed address pair is not', async () => {
  assert.deepEqual(await udpSources('fe1', '10.41.0.10', 'fe2', '10.41.0.11', 9001), ['10.41.0.10'], 'its own address passes');
  assert.deepEqual(await udpSources('fe1', '10.41.0.99', 'fe2', '10.41.0.11', 9002), [], 'another address of the subnet is dropped (IP_TRANSPARENT sender)');
  const vmi = JSON.parse((await cirrus('-o', 'json', 'lab', 'status', '--name', LAB)).stdout).workloads.find((w: { name: string }) => w.name === W('fe1')).vmi_uuid as string;
  const put = await fetch(`${lab.api}/virtual-machine-interface/${vmi}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ 'virtual-machine-interface': { virtual_machine_interface_allowed_address_pairs: { allowed_address_pair: [{ ip: { ip_prefix: '10.41.0.99', ip_prefix_len: 32 } }] } } }),
  });
  assert.equal(put.status, 200, await put.text());
  await pollUntil('the allowed pair passes', async () => ((await udpSources('fe1', '10.41.0.99', 'fe2', '10.41.0.11', 9003)).includes('10.41.0.99') ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });
  // Another MAC on the same interface: nothing passes.
  const mac = (await inside('fe1', 'cat', '/sys/class/net/eth0/address')).stdout.trim();
  await inside('fe1', 'ip', 'link', 'set', 'eth0', 'address', '02:66:66:66:66:66');
  try {
    assert.equal(await reach('fe1', 'icmp', '10.41.0.11'), undefined, 'a foreign MAC is dropped');
  } finally {
    await inside('fe1', 'ip', 'link', 'set', 'eth0', 'address', mac);
  }
  await reaches('fe1', 'icmp', '10.41.0.11');
});

test('ARP claiming an address not its own is dropped at the host', async () => {
  const counter = async () => Number(/counter packets (\d+) bytes \d+ drop comment "spoofed source"/.exec((await run('ip', ['netns', 'exec', `${LAB}-h1`, 'nft', 'list', 'chain', 'arp', 'cirrus', 'classify'])).stdout)?.[1] ?? NaN);
  const before = await counter();
  // A gratuitous ARP reply from fe1's own MAC claiming 10.41.0.50.
  await inside('fe1', 'python3', '-c', `
import socket
mac = bytes.fromhex(open('/sys/class/net/eth0/address').read().strip().replace(':', ''))
ip = bytes([10, 41, 0, 50])
frame = b'\\xff' * 6 + mac + b'\\x08\\x06' + bytes.fromhex('0001080006040002') + mac + ip + b'\\xff' * 6 + ip
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0))
for i in range(3): s.send(frame)
`);
  await pollUntil('the spoofed ARP counted and dropped', async () => ((await counter()) >= before + 3 ? true : undefined), { timeoutMs: 5_000, intervalMs: 50 });
});

test("the host is protected: a workload pings its gateway but reaches nothing else of its host", async () => {
  await reaches('fe1', 'icmp', '10.41.0.1');
  assert.equal(await reach('fe1', 'icmp', '10.254.0.1'), undefined, "the host's underlay address does not answer a workload");
  assert.equal(await reach('fe1', 'tcp', '10.41.0.1', 22), undefined);
});

test("security groups: an interface receives only what its groups allow; port security off lifts them", async () => {
  const json = (method: string, path: string, body?: unknown) =>
    fetch(`${lab.api}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> }));
  const local = { security_group: 'local' };
  const created = await json('POST', '/security-groups', {
    'security-group': {
      fq_name: ['default-domain', 'admin', 'web7001'],
      parent_type: 'project',
      security_group_entries: {
        policy_rule: [
          { direction: '>', protocol: 'tcp', ethertype: 'IPv4', src_addresses: [{ subnet: { ip_prefix: '0.0.0.0', ip_prefix_len: 0 } }], dst_addresses: [local], src_ports: [{ start_port: -1, end_port: -1 }], dst_ports: [{ start_port: 7001, end_port: 7001 }] },
          { direction: '>', protocol: 'any', ethertype: 'IPv4', src_addresses: [local], dst_addresses: [{ subnet: { ip_prefix: '0.0.0.0', ip_prefix_len: 0 } }], src_ports: [{ start_port: -1, end_port: -1 }], dst_ports: [{ start_port: -1, end_port: -1 }] },
        ],
      },
    },
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const workloads = JSON.parse((await cirrus('-o', 'json', 'lab', 'status', '--name', LAB)).stdout).workloads as { name: string; vmi_uuid: string }[];
  const fe2 = workloads.find((w) => w.name === W('fe2'))!.vmi_uuid;
  const put = (body: Record<string, unknown>) => json('PUT', `/virtual-machine-interface/${fe2}`, { 'virtual-machine-interface': body });
  assert.equal((await put({ security_group_refs: [{ to: ['default-domain', 'admin', 'web7001'] }] })).status, 200);
  await blocked('fe1', 'icmp', '10.41.0.11');
  assert.equal(await reach('fe1', 'tcp', '10.41.0.11', 7001), W('fe2'), 'the group allows 7001');
  assert.equal(await reach('mg1', 'tcp', '10.41.0.11', 7001), undefined, 'the policies still apply too (mgmt may not open connections to frontend)');
  assert.equal(await reach('fe2', 'tcp', '10.41.0.10', 7001), W('fe1'), 'its egress rule lets it connect out');
  assert.equal((await put({ port_security_enabled: false })).status, 200);
  await reaches('fe1', 'icmp', '10.41.0.11');
});
