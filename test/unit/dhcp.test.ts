// The agent's DHCP server, pure parts: the packet codec (malformed packets are errors, never
// exceptions), the server's decisions (RFC 2131 states, where replies go), the binding from
// the host's document, and the subnet's DHCP options as the API checks them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NetworkEntry, PortEntry } from '../../src/control/protocol.js';
import { dhcpBinding } from '../../src/agent/services/binding.js';
import { BROADCAST_FLAG, type DhcpMessage, DhcpType, Opt, decodeDhcp, encodeDhcp, optionAddress } from '../../src/agent/services/dhcp-codec.js';
import { type DhcpBinding, DhcpServer } from '../../src/agent/services/dhcp-server.js';
import { RateLimiter } from '../../src/agent/services/rate-limit.js';
import { buildUdp, parseUdp } from '../../src/agent/services/udp.js';
import { readSubnetDhcp } from '../../src/ipam/dhcp-options.js';
import { completeIpamRefs } from '../../src/ipam/subnets.js';
import type { ApiError } from '../../src/config/errors.js';

const MAC = '02:aa:bb:cc:dd:01';
const ip4 = (a: string) => Buffer.from(a.split('.').map(Number));

/** A client's BOOTREQUEST, written byte by byte (independently of the codec under test). */
function request(o: { type?: number; chaddr?: string; ciaddr?: string; giaddr?: string; flags?: number; op?: number; options?: [number, Buffer][]; raw?: Buffer; noEnd?: boolean } = {}): Buffer {
  const head = Buffer.alloc(240);
  head[0] = o.op ?? 1;
  head[1] = 1;
  head[2] = 6;
  head.writeUInt32BE(0x1234abcd, 4);
  head.writeUInt16BE(o.flags ?? 0, 10);
  ip4(o.ciaddr ?? '0.0.0.0').copy(head, 12);
  ip4(o.giaddr ?? '0.0.0.0').copy(head, 24);
  Buffer.from((o.chaddr ?? MAC).split(':').map((h) => parseInt(h, 16))).copy(head, 28);
  head.writeUInt32BE(0x63825363, 236);
  const opts = [...(o.type !== undefined ? [[53, Buffer.from([o.type])] as [number, Buffer]] : []), ...(o.options ?? [])];
  return Buffer.concat([head, ...opts.map(([c, v]) => Buffer.concat([Buffer.from([c, v.length]), v])), o.raw ?? Buffer.alloc(0), o.noEnd ? Buffer.alloc(0) : Buffer.from([255])]);
}

test('malformed DHCP packets are errors, never exceptions', () => {
  const good = request({ type: DhcpType.DISCOVER });
  const cookie = Buffer.from(good);
  cookie.writeUInt32BE(0xdeadbeef, 236);
  const ether = Buffer.from(good);
  ether[1] = 6;
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /too short/],
    ['truncated fixed part', good.subarray(0, 200), /too short/],
    ['bad op', request({ type: 1, op: 7 }), /bad op/],
    ['not Ethernet', ether, /not Ethernet/],
    ['wrong magic cookie', cookie, /magic cookie/],
    ['option overruns the packet', request({ type: 1, raw: Buffer.from([12, 40, 65, 66]), noEnd: true }), /overruns/],
    ['option length missing', request({ type: 1, raw: Buffer.from([12]), noEnd: true }), /truncated/],
    ['no end option', request({ type: 1, noEnd: true }), /not terminated/],
    ['no message type', request({}), /message type/],
    ['message type out of range', request({ type: 9 }), /message type/],
    ['message type of two bytes', request({ options: [[53, Buffer.from([1, 1])]] }), /message type/],
    ['requested address of 3 bytes', request({ type: 3, options: [[50, Buffer.from([10, 0, 0])]] }), /option 50 is not an address/],
    ['bad overload value', request({ type: 1, options: [[52, Buffer.from([9])]] }), /overload/],
    ['overloaded file field unterminated', request({ type: 1, options: [[52, Buffer.from([1])]] }), /overloaded file field/],
  ];
  for (const [what, buf, why] of cases) {
    const r = decodeDhcp(buf);
    assert.equal(typeof r, 'string', what);
    assert.match(r as string, why, what);
  }
  // Every truncation of a good packet is an error text too.
  for (let n = 0; n < good.length; n++) assert.equal(typeof decodeDhcp(good.subarray(0, n)), 'string', `truncated to ${n}`);
});

test('decoding: fields, padding, repeated options concatenated (RFC 3396), overloaded file field', () => {
  const file = Buffer.alloc(128);
  file.set([12, 2, 0x68, 0x69, 255]); // host name "hi" in the file field
  const buf = request({ type: DhcpType.REQUEST, ciaddr: '10.0.0.5', flags: BROADCAST_FLAG, options: [[52, Buffer.from([1])], [12, Buffer.from('ab')], [12, Buffer.from('cd')], [50, ip4('10.0.0.9')]], raw: Buffer.from([0, 0, 0]) });
  file.copy(buf, 108);
  const m = decodeDhcp(buf) as DhcpMessage;
  assert.equal(typeof m, 'object', String(m));
  assert.equal(m.type, DhcpType.REQUEST);
  assert.equal(m.chaddr, MAC);
  assert.equal(m.ciaddr, '10.0.0.5');
  assert.equal(m.xid, 0x1234abcd);
  assert.equal(m.flags, BROADCAST_FLAG);
  assert.equal(m.options.get(12)?.toString(), 'abcdhi');
  assert.equal(optionAddress(m, Opt.REQUESTED_IP), '10.0.0.9');
});

const binding = (o: Partial<DhcpBinding> = {}): DhcpBinding => ({
  key: 'port-1',
  mac: MAC,
  address: '10.1.0.5',
  prefixLen: 24,
  server: '10.1.0.1',
  gateway: '10.1.0.1',
  dnsServers: ['10.1.0.2'],
  domainName: 'red.admin.cirrus.internal',
  mtu: 1450,
  leaseTime: 600,
  routes: [],
  ...o,
});

const msg = (o: Parameters<typeof request>[0]) => decodeDhcp(request(o)) as DhcpMessage;
const sid = (a: string): [number, Buffer] => [Opt.SERVER_ID, ip4(a)];
const req = (a: string): [number, Buffer] => [Opt.REQUESTED_IP, ip4(a)];

test('server decisions: each RFC 2131 state, where the reply goes, and the lease it leaves', () => {
  type Case = [string, Parameters<typeof request>[0], string, { ip?: string; mac?: string; yiaddr?: string; type?: number; lease?: string }];
  const B = 'ff:ff:ff:ff:ff:ff';
  const cases: Case[] = [
    ['DISCOVER: offer, unicast to the address and MAC', { type: 1 }, 'offer', { ip: '10.1.0.5', mac: MAC, yiaddr: '10.1.0.5', type: DhcpType.OFFER, lease: 'offered' }],
    ['DISCOVER with the broadcast flag: broadcast', { type: 1, flags: BROADCAST_FLAG }, 'offer', { ip: '255.255.255.255', mac: B }],
    ['REQUEST selecting our offer: ack', { type: 3, options: [sid('10.1.0.1'), req('10.1.0.5')] }, 'ack', { ip: '10.1.0.5', type: DhcpType.ACK, lease: 'bound' }],
    ['REQUEST selecting another address: nak, broadcast', { type: 3, options: [sid('10.1.0.1'), req('10.1.0.9')] }, 'nak', { ip: '255.255.255.255', mac: B, yiaddr: '0.0.0.0', type: DhcpType.NAK, lease: undefined }],
    ["REQUEST selecting another server's offer: nothing", { type: 3, options: [sid('10.1.0.77'), req('10.1.0.5')] }, 'ignored', { lease: undefined }],
    ['REQUEST init-reboot, right address: ack', { type: 3, options: [req('10.1.0.5')] }, 'ack', { ip: '10.1.0.5' }],
    ['REQUEST init-reboot, wrong address (moved network): nak', { type: 3, options: [req('192.168.7.7')] }, 'nak', { type: DhcpType.NAK }],
    ['REQUEST renewing (ciaddr): ack unicast to ciaddr', { type: 3, ciaddr: '10.1.0.5' }, 'ack', { ip: '10.1.0.5', mac: MAC, lease: 'bound' }],
    ['REQUEST rebinding with a stale address: nak', { type: 3, ciaddr: '10.1.0.99', flags: BROADCAST_FLAG }, 'nak', { ip: '255.255.255.255' }],
    ['REQUEST naming no address: nothing', { type: 3 }, 'ignored', { lease: undefined }],
    ['INFORM: ack without address or lease, to ciaddr', { type: 8, ciaddr: '10.1.0.5' }, 'inform', { ip: '10.1.0.5', yiaddr: '0.0.0.0', type: DhcpType.ACK }],
    ['RELEASE: released, no reply', { type: 7, ciaddr: '10.1.0.5' }, 'release', { lease: 'released' }],
    ['RELEASE of another address: nothing', { type: 7, ciaddr: '10.1.0.6' }, 'ignored', { lease: undefined }],
    ['DECLINE: declined, no reply', { type: 4, options: [req('10.1.0.5')] }, 'decline', { lease: 'declined' }],
    ["a chaddr that is not the interface's MAC: nothing", { type: 1, chaddr: '02:aa:bb:cc:dd:02' }, 'unknown_client', { lease: undefined }],
    ['relayed (giaddr): nothing', { type: 1, giaddr: '10.9.9.9' }, 'ignored', { lease: undefined }],
    ["a server's message: nothing", { type: 2 }, 'ignored', { lease: undefined }],
    ['a BOOTREPLY: nothing', { type: 1, op: 2 }, 'ignored', { lease: undefined }],
  ];
  for (const [what, m, outcome, want] of cases) {
    const server = new DhcpServer();
    const v = server.handle(msg(m), binding(), 1000);
    assert.equal(v.outcome, outcome, what);
    assert.equal(v.reply === undefined, want.ip === undefined && want.type === undefined, `${what}: reply or not`);
    if (want.ip) assert.equal(v.reply!.ip, want.ip, `${what}: destination`);
    if (want.mac) assert.equal(v.reply!.mac, want.mac, `${what}: MAC`);
    if (want.yiaddr) assert.equal(v.reply!.message.yiaddr, want.yiaddr, `${what}: yiaddr`);
    if (want.type) assert.equal(v.reply!.message.type, want.type, `${what}: type`);
    if ('lease' in want) assert.equal(server.list()[0]?.state, want.lease, `${what}: lease`);
  }
});

test('an ACK carries mask, router, DNS, domain, MTU, lease and T1/T2; host routes become option 121 with the default route', () => {
  const server = new DhcpServer();
  const v = server.handle(msg({ type: 3, options: [sid('10.1.0.1'), req('10.1.0.5')] }), binding({ routes: [{ prefix: '10.20.0.0/16', nextHop: '10.1.0.9' }] }), 0);
  const ack = decodeDhcp(encodeDhcp(v.reply!.message)) as DhcpMessage;
  assert.equal(typeof ack, 'object');
  assert.equal(ack.op, 2);
  assert.equal(ack.yiaddr, '10.1.0.5');
  const o = (c: number) => ack.options.get(c)!;
  assert.equal(optionAddress(ack, Opt.SUBNET_MASK), '255.255.255.0');
  assert.equal(optionAddress(ack, Opt.ROUTER), '10.1.0.1');
  assert.equal(optionAddress(ack, Opt.SERVER_ID), '10.1.0.1');
  assert.equal(optionAddress(ack, Opt.BROADCAST), '10.1.0.255');
  assert.equal(optionAddress(ack, Opt.DNS), '10.1.0.2');
  assert.equal(o(Opt.DOMAIN_NAME).toString(), 'red.admin.cirrus.internal');
  assert.equal(o(Opt.MTU).readUInt16BE(0), 1450);
  assert.deepEqual([o(Opt.LEASE_TIME), o(Opt.RENEWAL_TIME), o(Opt.REBINDING_TIME)].map((b) => b.readUInt32BE(0)), [600, 300, 525]);
  assert.deepEqual([...o(Opt.CLASSLESS_ROUTES)], [16, 10, 20, 10, 1, 0, 9, 0, 10, 1, 0, 1]);
  assert.ok(encodeDhcp(v.reply!.message).length >= 300, 'BOOTP minimum size');
  // A renewal counts; expiry follows the lease time.
  const renewed = server.handle(msg({ type: 3, ciaddr: '10.1.0.5' }), binding(), 60_000);
  assert.equal(renewed.outcome, 'ack');
  assert.deepEqual(server.list().map((l) => [l.state, l.renewals, l.expires]), [['bound', 1, 660_000]]);
  server.retain(new Set());
  assert.deepEqual(server.list(), [], 'leases of ports that went away are forgotten');
});

const port = (o: Partial<PortEntry> = {}): PortEntry => ({ vmiUuid: 'p1', network: 'n1', mac: '02:AA:bb:cc:dd:01', address: '10.1.0.5', prefixLen: 24, gateway: '10.1.0.1', dhcp: { dns: '10.1.0.2' }, ...o });
const net: NetworkEntry = { uuid: 'n1', name: 'default-domain:admin:red', id: 1, vni: 1, subnets: ['10.1.0.0/24'], serviceAddresses: ['10.1.0.1', '10.1.0.2'] };

test("a port's binding: from its entry and network; disabled, incomplete or server-less ports get nothing", () => {
  const b = dhcpBinding(port(), net, 'cirrus.internal') as DhcpBinding;
  assert.deepEqual(b, { key: 'p1', mac: MAC, address: '10.1.0.5', prefixLen: 24, server: '10.1.0.1', gateway: '10.1.0.1', dnsServers: ['10.1.0.2'], domainName: 'red.admin.cirrus.internal', mtu: 1450, leaseTime: 86400, routes: [] });
  const custom = dhcpBinding(port({ gateway: undefined, dhcp: { dns: '10.1.0.2', leaseTime: 30, dnsServers: ['9.9.9.9'], domainName: 'x.example', mtu: 1400 } }), net, 'cirrus.internal') as DhcpBinding;
  assert.deepEqual([custom.server, custom.gateway, custom.leaseTime, custom.dnsServers, custom.domainName, custom.mtu], ['10.1.0.2', undefined, 30, ['9.9.9.9'], 'x.example', 1400]);
  assert.match(dhcpBinding(port({ dhcp: { disabled: true } }), net, 's') as string, /enable_dhcp false/);
  assert.match(dhcpBinding(port({ pending: 'interface has no instance-ip', address: undefined }), net, 's') as string, /no instance-ip/);
  assert.match(dhcpBinding(port({ gateway: undefined, dhcp: {} }), net, 's') as string, /neither gateway nor DNS/);
  assert.equal((dhcpBinding(port(), { ...net, name: 'default-domain:admin:Not_A.Label' }, 's') as DhcpBinding).domainName, undefined, 'no domain for a network name that is no DNS label');
});

test("subnet DHCP options: the served ones by number or name, host routes; the API refuses bad values naming the field", () => {
  const opt = (name: string, value: string) => ({ dhcp_option_name: name, dhcp_option_value: value });
  const s = { dhcp_option_list: { dhcp_option: [opt('51', '120'), opt('domain-name-servers', '10.0.0.2 10.0.0.3'), opt('15', 'Corp.Example'), opt('interface-mtu', '1400'), opt('42', 'ntp')] }, host_routes: { route: [{ prefix: '10.8.0.0/16', next_hop: '10.0.0.1' }] } };
  assert.deepEqual(readSubnetDhcp(s, 'p'), { dhcp: { leaseTime: 120, dnsServers: ['10.0.0.2', '10.0.0.3'], domainName: 'corp.example', mtu: 1400, routes: [{ prefix: '10.8.0.0/16', nextHop: '10.0.0.1' }] }, errors: [] });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ dhcp_option_list: { dhcp_option: [opt('51', 'soon')] } }, /dhcp_option\[0\]\.dhcp_option_value: 'soon' is not a lease time/],
    [{ dhcp_option_list: { dhcp_option: [opt('51', '0')] } }, /not a lease time/],
    [{ dhcp_option_list: { dhcp_option: [opt('6', '10.0.0.300')] } }, /not a list of IPv4 addresses/],
    [{ dhcp_option_list: { dhcp_option: [opt('26', '40')] } }, /not an MTU/],
    [{ dhcp_option_list: { dhcp_option: [opt('domain-name', 'a..b')] } }, /not a domain name/],
    [{ host_routes: { route: [{ prefix: '10.8.0.1/16', next_hop: '10.0.0.1' }] } }, /host_routes\.route\[0\]\.prefix: .*host bits/],
    [{ host_routes: { route: [{ prefix: '10.8.0.0/16' }] } }, /host_routes\.route\[0\]\.next_hop: '' is not an IPv4 address/],
  ];
  for (const [extra, why] of bad) {
    const refs = [{ uuid: 'ipam', attr: { ipam_subnets: [{ subnet: { ip_prefix: '10.0.0.0', ip_prefix_len: 24 }, ...extra }] } }];
    assert.throws(() => completeIpamRefs(refs, 'f'), (e: ApiError) => e.status === 400 && why.test(e.message) && e.field?.startsWith('f[0].attr.ipam_subnets[0].') === true, JSON.stringify(extra));
  }
});

test('IPv4/UDP: built packets parse back; malformed headers are errors', () => {
  const p = { src: '10.1.0.1', dst: '255.255.255.255', sport: 67, dport: 68, payload: Buffer.from('hello') };
  const built = buildUdp(p);
  assert.deepEqual(parseUdp(built), p);
  const mutate = (f: (b: Buffer) => void) => {
    const b = Buffer.from(built);
    f(b);
    return b;
  };
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /truncated/],
    ['IPv6', mutate((b) => (b[0] = 0x60)), /not IPv4/],
    ['header length 4 words', mutate((b) => (b[0] = 0x44)), /header length/],
    ['total length beyond the packet', mutate((b) => b.writeUInt16BE(999, 2)), /total length/],
    ['a fragment', mutate((b) => b.writeUInt16BE(0x2000, 6)), /fragment/],
    ['TCP', mutate((b) => (b[9] = 6)), /not UDP/],
    ['bad header checksum', mutate((b) => (b[8] = 1)), /header checksum/],
    ['UDP length beyond the datagram', buildUdp({ ...p, payload: Buffer.alloc(0) }).subarray(0, 26), /total length/],
  ];
  for (const [what, b, why] of cases) assert.match(String(parseUdp(b)), why, what);
  const udpLen = mutate((b) => b.writeUInt16BE(200, 24));
  assert.match(String(parseUdp(udpLen)), /bad UDP length/);
});

test('rate limiter: a burst, then the rate; keys are independent', () => {
  const r = new RateLimiter(10, 10);
  const taken = Array.from({ length: 15 }, () => r.take('a', 0)).filter(Boolean).length;
  assert.equal(taken, 10, 'the burst');
  assert.equal(r.take('b', 0), true, 'another interface has its own bucket');
  assert.equal(r.take('a', 50), false, 'half a token after 50 ms');
  assert.equal(r.take('a', 100), true, 'one token after 100 ms');
  r.retain((k) => k !== 'a');
  assert.equal(r.take('a', 100), true, 'a forgotten key starts full');
});
