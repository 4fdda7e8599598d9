// The agents' DHCP and DNS services with real clients, on a 2-host lab: dhclient and
// udhcpc inside workloads get address, gateway, MTU, DNS server and domain, renew and
// release; two networks with the same subnet on one host each get their own answers; a
// subnet with enable_dhcp false gets none; dig and getent resolve instance names across
// hosts and through a policy, not across isolated networks, and refuse outside names; a
// new instance resolves within a second; scapy-made malformed and spoofed packets and a
// flood are dropped and counted while the real clients keep working.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { pollUntil } from '../../src/util/poll.js';
import { networkBody } from '../support/fixtures.js';
import { TestLab } from '../support/lab.js';
import { call } from '../support/server.js';

if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

const lab = new TestLab('d');
const { name: LAB, w: W, cirrus } = lab;
const run = promisify(execFile);
const LIB = path.resolve(import.meta.dirname, '../../../lib');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-dhcp-'));
const clients: ChildProcess[] = [];
const inside = (w: string, ...cmd: string[]) => run('ip', ['netns', 'exec', W(w), ...cmd], { timeout: 20_000 });
const onHost = (h: string, ...cmd: string[]) => cirrus('lab', 'exec', h, '--name', LAB, '--', ...cmd);
const introspect = async <T>(h: string, p: string): Promise<T> => JSON.parse((await onHost(h, 'curl', '-s', `127.0.0.1:8085${p}`)).stdout) as T;
const metric = async (h: string, name: string, outcome: string): Promise<number> => {
  const text = (await onHost(h, 'curl', '-s', '127.0.0.1:8085/metrics')).stdout;
  return Number(new RegExp(`^${name}\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
};
type Lease = { key: string; mac: string; address: string; state: string; since: number; renewals: number; interface?: string };
const leaseOf = async (h: string, mac: string): Promise<Lease | undefined> => (await introspect<{ leases: Lease[] }>(h, '/dhcp')).leases.find((l) => l.mac === mac);
const addrOf = async (w: string): Promise<string | undefined> => {
  const [link] = JSON.parse((await inside(w, 'ip', '-j', '-4', 'addr', 'show', 'dev', 'eth0')).stdout) as { addr_info: { local: string; prefixlen: number }[] }[];
  const a = link?.addr_info[0];
  return a ? `${a.local}/${a.prefixlen}` : undefined;
};
const dig = async (w: string, ...args: string[]) => (await inside(w, 'dig', '+time=1', '+tries=2', ...args)).stdout;
const macs: Record<string, string> = {};

/** A network through the API with one /24 subnet (gateway .1, DNS .2) and what the subnet adds. */
async function network(name: string, cidr: string, subnetExtra: Record<string, unknown> = {}): Promise<void> {
  const body = networkBody(name, cidr);
  Object.assign(body['virtual-network'].network_ipam_refs[0]!.attr.ipam_subnets[0]!, subnetExtra);
  const r = await call(lab.api, 'POST', '/virtual-networks', body);
  assert.equal(r.status, 200, r.text);
}

async function addWorkload(w: string, host: string, net: string, ip: string, dhcp: boolean): Promise<void> {
  const r = await cirrus('-o', 'json', 'lab', 'workload', 'add', W(w), '--host', host, '--network', net, '--ip', ip, '--name', LAB, ...(dhcp ? ['--dhcp'] : []));
  macs[w] = (JSON.parse(r.stdout) as { mac: string }).mac;
}

/** dhclient in the foreground inside `w`, with our script and its files in a temp dir. */
function dhclient(w: string, ...extra: string[]): ChildProcess {
  const files = ['-pf', path.join(tmp, `${w}.pid`), '-lf', path.join(tmp, `${w}.leases`)];
  const child = spawn('ip', ['netns', 'exec', W(w), 'dhclient', '-d', '-sf', path.join(LIB, 'dhclient-script'), ...files, ...extra, 'eth0'], { stdio: 'ignore' });
  clients.push(child);
  return child;
}

before(async () => {
  await lab.up(2);
  // red renews every 2 s (lease 4 s, T1 half of it); blue overlaps red; green is leaked into red by a policy.
  await network('red', '10.60.0.0/24', { dhcp_option_list: { dhcp_option: [{ dhcp_option_name: '51', dhcp_option_value: '4' }] }, host_routes: { route: [{ prefix: '10.99.0.0/16', next_hop: '10.60.0.1' }] } });
  await network('blue', '10.60.0.0/24');
  await network('green', '10.61.0.0/24');
  await network('white', '10.62.0.0/24', { enable_dhcp: false });
  await cirrus('policy', 'create', 'red-green', '--rule', 'pass any red <> green');
  for (const n of ['red', 'green']) await cirrus('policy', 'attach', 'red-green', '--network', n);
  await addWorkload('r1', 'h1', 'red', '10.60.0.10', true);
  await addWorkload('b1', 'h1', 'blue', '10.60.0.10', true);
  await addWorkload('r2', 'h2', 'red', '10.60.0.20', false);
  await addWorkload('g2', 'h2', 'green', '10.61.0.5', false);
  await addWorkload('w1', 'h1', 'white', '10.62.0.10', true);
});

after(async () => {
  for (const c of clients) c.kill('SIGKILL');
  await lab.down();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('dhclient gets address, gateway, MTU, DNS server, domain and host routes; renews; releases', async () => {
  await inside('r1', 'ip', 'link', 'set', 'eth0', 'mtu', '1500'); // the lease must bring 1450
  dhclient('r1');
  await pollUntil('r1 configured by dhclient', async () => ((await addrOf('r1')) === '10.60.0.10/24' ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
  const link = JSON.parse((await inside('r1', 'ip', '-j', 'link', 'show', 'eth0')).stdout) as { mtu: number }[];
  assert.equal(link[0]!.mtu, 1450);
  const routes = (await inside('r1', 'ip', 'route')).stdout;
  assert.match(routes, /default via 10\.60\.0\.1 dev eth0/);
  assert.match(routes, /10\.99\.0\.0\/16 via 10\.60\.0\.1 dev eth0/, 'option 121 host route');
  assert.equal(fs.readFileSync(`/etc/netns/${W('r1')}/resolv.conf`, 'utf8'), 'search red.admin.cirrus.internal\nnameserver 10.60.0.2\n');
  const leases = fs.readFileSync(path.join(tmp, 'r1.leases'), 'utf8');
  for (const line of ['option interface-mtu 1450;', 'option domain-name-servers 10.60.0.2;', 'option routers 10.60.0.1;', 'option dhcp-server-identifier 10.60.0.1;', 'option dhcp-lease-time 4;']) assert.ok(leases.includes(line), `${line} in\n${leases}`);
  await inside('r1', 'ping', '-c', '1', '-W', '2', '10.60.0.1');
  // Renewals (unicast to the server identifier) every 2 s.
  await pollUntil('two renewals of r1', async () => (((await leaseOf('h1', macs['r1']!))?.renewals ?? 0) >= 2 ? true : undefined), { timeoutMs: 10_000, intervalMs: 200 });
  // dhclient -r stops the running client (its pid file) and releases.
  await inside('r1', 'dhclient', '-r', '-sf', path.join(LIB, 'dhclient-script'), '-pf', path.join(tmp, 'r1.pid'), '-lf', path.join(tmp, 'r1.leases'), 'eth0');
  await pollUntil('r1 released', async () => ((await leaseOf('h1', macs['r1']!))?.state === 'released' ? true : undefined), { timeoutMs: 5_000, intervalMs: 100 });
  assert.equal(await addrOf('r1'), undefined);
  // Back for the name tests.
  dhclient('r1');
  await pollUntil('r1 configured again', async () => ((await addrOf('r1')) === '10.60.0.10/24' ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
});

test('udhcpc in the overlapping network on the same host gets its own answers; renews on USR1, releases on USR2', async () => {
  const child = spawn('ip', ['netns', 'exec', W('b1'), 'udhcpc', '-f', '-i', 'eth0', '-s', path.join(LIB, 'udhcpc-script'), '-t', '5', '-T', '1'], { stdio: 'ignore' });
  clients.push(child);
  await pollUntil('b1 configured by udhcpc', async () => ((await addrOf('b1')) === '10.60.0.10/24' ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
  assert.equal(fs.readFileSync(`/etc/netns/${W('b1')}/resolv.conf`, 'utf8'), 'search blue.admin.cirrus.internal\nnameserver 10.60.0.2\n', "blue's domain, not red's");
  assert.doesNotMatch((await inside('b1', 'ip', 'route')).stdout, /10\.99\.0\.0/, "red's host route is not blue's");
  const before = (await leaseOf('h1', macs['b1']!))!;
  assert.deepEqual([before.state, before.address, before.interface !== (await leaseOf('h1', macs['r1']!))?.interface], ['bound', '10.60.0.10', true]);
  child.kill('SIGUSR1');
  await pollUntil('b1 renewed', async () => (((await leaseOf('h1', macs['b1']!))?.renewals ?? 0) > before.renewals ? true : undefined), { timeoutMs: 5_000, intervalMs: 100 });
  child.kill('SIGUSR2');
  await pollUntil('b1 released', async () => ((await leaseOf('h1', macs['b1']!))?.state === 'released' ? true : undefined), { timeoutMs: 5_000, intervalMs: 100 });
  child.kill('SIGUSR1'); // and bound again
  await pollUntil('b1 bound again', async () => ((await leaseOf('h1', macs['b1']!))?.state === 'bound' && (await addrOf('b1')) === '10.60.0.10/24' ? true : undefined), { timeoutMs: 5_000, intervalMs: 100 });
});

test('enable_dhcp false: the client gets no answer', async () => {
  const notServed = await metric('h1', 'cirrus_agent_dhcp_packets_total', 'not_served');
  await assert.rejects(inside('w1', 'udhcpc', '-q', '-n', '-i', 'eth0', '-s', path.join(LIB, 'udhcpc-script'), '-t', '2', '-T', '1'));
  assert.equal(await addrOf('w1'), undefined);
  assert.ok((await metric('h1', 'cirrus_agent_dhcp_packets_total', 'not_served')) >= notServed + 2);
});

test('dig and getent resolve instance names: across hosts, through a policy, not across isolated networks; outside names refused', async () => {
  assert.equal((await inside('r1', 'getent', 'hosts', W('r2'))).stdout.trim().split(/\s+/)[0], '10.60.0.20', 'short name, on another host');
  assert.equal((await dig('r1', '+short', '@10.60.0.2', `${W('r2')}.red.admin.cirrus.internal`)).trim(), '10.60.0.20');
  assert.equal((await dig('r2', '+short', '@10.60.0.2', `${W('r1')}.red.admin.cirrus.internal`)).trim(), '10.60.0.10', 'from the other host');
  assert.equal((await dig('r1', '+short', '@10.60.0.2', `${W('g2')}.green.admin.cirrus.internal`)).trim(), '10.61.0.5', 'green is leaked into red');
  assert.equal((await dig('r1', '+short', '@10.60.0.2', '-x', '10.60.0.10')).trim(), `${W('r1')}.red.admin.cirrus.internal.`);
  assert.equal((await dig('b1', '+short', '@10.60.0.2', '-x', '10.60.0.10')).trim(), `${W('b1')}.blue.admin.cirrus.internal.`, 'same address, same host, its own network');
  assert.match(await dig('r1', '@10.60.0.2', `${W('b1')}.blue.admin.cirrus.internal`), /status: NXDOMAIN/, 'blue is isolated from red');
  assert.match(await dig('b1', '@10.60.0.2', W('r1')), /status: REFUSED/);
  assert.match(await dig('r1', '@10.60.0.2', 'example.com'), /status: REFUSED/, 'no open resolver');
  const ahosts = (await inside('r1', 'getent', 'ahosts', `${W('r2')}.red.admin.cirrus.internal`)).stdout;
  assert.match(ahosts, /^10\.60\.0\.20\s+STREAM/m, 'A and AAAA asked together (AAAA: no data)');
});

test('a new instance resolves within a second of its creation, on another host', async () => {
  await addWorkload('r3', 'h1', 'red', '10.60.0.30', false);
  const created = Date.now();
  await pollUntil('r3 resolvable from h2', async () => ((await dig('r2', '+short', '+time=1', '@10.60.0.2', `${W('r3')}.red.admin.cirrus.internal`)).trim() === '10.60.0.30' ? true : undefined), { timeoutMs: 1_000, intervalMs: 20 });
  assert.ok(Date.now() - created < 1_000);
});

test('scapy: malformed, spoofed and flooding DHCP and DNS packets are dropped and counted; the clients keep working', async () => {
  const before = {
    dhcp: await metric('h1', 'cirrus_agent_dhcp_packets_total', 'malformed'),
    dns: await metric('h1', 'cirrus_agent_dns_queries_total', 'malformed'),
    spoofed: await metric('h1', 'cirrus_agent_dhcp_packets_total', 'unknown_client'),
    limited: await metric('h1', 'cirrus_agent_dhcp_packets_total', 'rate_limited'),
  };
  const leaseB1 = await leaseOf('h1', macs['b1']!);
  const script = `
from scapy.all import Ether, IP, UDP, Raw, BOOTP, DHCP, sendp, conf
conf.verb = 0
me = "${macs['r1']}"
def dhcp(payload):
    sendp(Ether(src=me, dst="ff:ff:ff:ff:ff:ff")/IP(src="0.0.0.0", dst="255.255.255.255")/UDP(sport=68, dport=67)/Raw(payload), iface="eth0")
def dns(payload):
    sendp(Ether(src=me, dst="ff:ff:ff:ff:ff:ff")/IP(src="10.60.0.10", dst="10.60.0.2")/UDP(sport=40000, dport=53)/Raw(payload), iface="eth0")
mac = bytes.fromhex(me.replace(":", ""))
good = bytes(BOOTP(chaddr=mac, xid=7)/DHCP(options=[("message-type", "discover"), "end"]))
dhcp(good[:100])                                   # truncated
dhcp(good[:236] + b"\\x00\\x00\\x00\\x00" + good[240:])    # wrong magic cookie
dhcp(good[:240] + bytes([12, 200, 65, 66]))        # option overruns the packet
dhcp(good[:240] + bytes([53, 1, 1]))               # no end option
dns(b"\\x12\\x34\\x01")                             # truncated header
dns(b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\xc0\\x0c\\x00\\x01\\x00\\x01")  # pointer loop
dns(b"\\x12\\x34\\x81\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01\\x00\\x01")  # a response
# b1's MAC as chaddr from r1's interface: nothing for it
other = bytes.fromhex("${macs['b1']}".replace(":", ""))
dhcp(bytes(BOOTP(chaddr=other, xid=8)/DHCP(options=[("message-type", "request"), ("requested_addr", "10.60.0.10"), "end"])))
# a flood: far more than 100 per second
sendp([Ether(src=me, dst="ff:ff:ff:ff:ff:ff")/IP(src="0.0.0.0", dst="255.255.255.255")/UDP(sport=68, dport=67)/Raw(good)] * 400, iface="eth0")
`;
  await inside('r1', '/usr/bin/python3', '-c', script);
  const flooded = Date.now();
  await pollUntil('drops counted', async () => {
    const now = {
      dhcp: await metric('h1', 'cirrus_agent_dhcp_packets_total', 'malformed'),
      dns: await metric('h1', 'cirrus_agent_dns_queries_total', 'malformed'),
      spoofed: await metric('h1', 'cirrus_agent_dhcp_packets_total', 'unknown_client'),
      limited: await metric('h1', 'cirrus_agent_dhcp_packets_total', 'rate_limited'),
    };
    return now.dhcp >= before.dhcp + 4 && now.dns >= before.dns + 3 && now.spoofed >= before.spoofed + 1 && now.limited >= before.limited + 200 ? true : undefined;
  }, { timeoutMs: 5_000, intervalMs: 200 });
  assert.deepEqual(await leaseOf('h1', macs['b1']!), leaseB1, "b1's lease untouched by r1's packets naming its MAC");
  // The agent is fine and the real clients work.
  assert.equal((await introspect<{ status: string }>('h1', '/healthz')).status, 'ok');
  assert.equal((await dig('r1', '+short', '@10.60.0.2', `${W('r2')}.red.admin.cirrus.internal`)).trim(), '10.60.0.20');
  // The flood's DISCOVERs (r1's own MAC) left r1's lease offered; its next renewal binds it again.
  await pollUntil('r1 bound again after the flood', async () => {
    const l = await leaseOf('h1', macs['r1']!);
    return l?.state === 'bound' && l.since > flooded ? true : undefined;
  }, { timeoutMs: 8_000, intervalMs: 200 });
});
