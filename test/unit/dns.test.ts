// The agent's DNS service, pure parts: the query codec (malformed queries are errors,
// never exceptions) and the name table (scheme, isolation, leaks, overlaps, refusals).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Entry } from '../../src/control/protocol.js';
import { type DnsQuery, RR, Rcode, decodeDnsQuery, encodeDnsResponse, encodeName } from '../../src/agent/services/dns-codec.js';
import { NameTable } from '../../src/agent/services/dns-names.js';

/** A query, byte by byte: header, the question's name (given encoded), type, class, optional OPT. */
function query(o: { id?: number; flags?: number; counts?: [number, number, number, number]; name?: Buffer; qtype?: number; qclass?: number; opt?: Buffer; tail?: Buffer } = {}): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(o.id ?? 0x4242, 0);
  h.writeUInt16BE(o.flags ?? 0x0100, 2);
  const [qd, an, ns, ar] = o.counts ?? [1, 0, 0, o.opt ? 1 : 0];
  [qd, an, ns, ar].forEach((n, i) => h.writeUInt16BE(n, 4 + 2 * i));
  const q = Buffer.alloc(4);
  q.writeUInt16BE(o.qtype ?? RR.A, 0);
  q.writeUInt16BE(o.qclass ?? 1, 2);
  return Buffer.concat([h, o.name ?? encodeName('web1.red.admin.cirrus.internal'), q, o.opt ?? Buffer.alloc(0), o.tail ?? Buffer.alloc(0)]);
}
const OPT = Buffer.from([0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);

test('malformed DNS queries are errors, never exceptions', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /header truncated/],
    ['header only', query().subarray(0, 11), /header truncated/],
    ['a response', query({ flags: 0x8100 }), /a response/],
    ['no question', query({ counts: [0, 0, 0, 0] }), /0 questions/],
    ['two questions', query({ counts: [2, 0, 0, 0] }), /2 questions/],
    ['answers in a query', query({ counts: [1, 1, 0, 0] }), /unexpected records/],
    ['label overruns the packet', query({ name: Buffer.from([40, 97, 98]) }).subarray(0, 15), /truncated/],
    ['pointer to itself', query({ name: Buffer.from([0xc0, 12]) }), /bad name pointer/],
    ['pointer forwards', query({ name: Buffer.from([0xc0, 40]) }), /bad name pointer/],
    ['a loop of backward pointers', query({ name: Buffer.from([1, 120, 0xc0, 12]) }), /bad name pointer/],
    ['reserved label type', query({ name: Buffer.from([0x40, 0]) }), /bad label type/],
    ['name longer than 255', query({ name: Buffer.concat([...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 97)])), Buffer.from([0])]) }), /too long/],
    ['question without type and class', Buffer.concat([query().subarray(0, 12), encodeName('a')]), /question truncated/],
    ['trailing bytes', query({ tail: Buffer.from([1, 2, 3]) }), /trailing bytes/],
    ['additional record that is not OPT', query({ counts: [1, 0, 0, 1], opt: Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]) }), /not EDNS0 OPT/],
    ['OPT rdata overruns', query({ opt: Buffer.from([0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 9]) }), /OPT record truncated/],
  ];
  for (const [what, buf, why] of cases) {
    const r = decodeDnsQuery(buf);
    assert.equal(typeof r, 'string', what);
    assert.match(r as string, why, what);
  }
  const good = query({ opt: OPT });
  for (let n = 0; n < good.length; n++) assert.equal(typeof decodeDnsQuery(good.subarray(0, n)), 'string', `truncated to ${n}`);
});

test('decoding keeps the case of the labels for the answer and lower-cases the name; EDNS is echoed', () => {
  const q = decodeDnsQuery(query({ name: encodeName('Web1.RED.admin.cirrus.internal'), opt: OPT })) as DnsQuery;
  assert.equal(q.name, 'web1.red.admin.cirrus.internal');
  assert.deepEqual([q.id, q.rd, q.edns, q.qtype], [0x4242, true, true, RR.A]);
  const r = encodeDnsResponse(q, Rcode.NOERROR, [{ type: RR.A, ttl: 5, data: '10.1.0.5' }, { type: RR.A, ttl: 5, data: '10.1.0.6' }], true);
  assert.equal(r.readUInt16BE(0), 0x4242);
  assert.equal(r.readUInt16BE(2), 0x8000 | 0x0400 | 0x0100, 'QR, AA, RD; NOERROR');
  assert.deepEqual([4, 6, 8, 10].map((o) => r.readUInt16BE(o)), [1, 2, 0, 1]);
  assert.ok(r.includes(Buffer.from('Web1')), "the question's case");
  const first = 12 + encodeName('web1.red.admin.cirrus.internal').length + 4;
  assert.deepEqual([r.readUInt16BE(first), r.readUInt16BE(first + 2), r.readUInt32BE(first + 6), r.readUInt16BE(first + 10)], [0xc00c, RR.A, 5, 4]);
  assert.deepEqual([...r.subarray(first + 12, first + 16)], [10, 1, 0, 5]);
});

const RED = 'net-red';
const BLUE = 'net-blue';
const GREEN = 'net-green';
const net = (uuid: string, name: string, subnet: string): Entry => [`n/${uuid}`, { uuid, name: `default-domain:admin:${name}`, id: 1, vni: 1, subnets: [subnet], serviceAddresses: [] }];
const port = (vmi: string, network: string, vm: string, address: string): Entry => [`p/${vmi}`, { vmiUuid: vmi, network, address, vm: { uuid: `vm-${vm}`, name: vm } }];
const route = (network: string, address: string, name?: string): Entry => [`r/${network}/${address}`, { network, address, vtep: '192.168.0.2', ...(name ? { name } : {}) }];

const table = new NameTable([
  net(RED, 'red', '10.1.0.0/24'),
  net(BLUE, 'blue', '10.1.0.0/24'),
  net(GREEN, 'green', '10.3.0.0/24'),
  port('a', RED, 'web1', '10.1.0.5'),
  port('b', BLUE, 'db1', '10.1.0.5'),
  port('c', RED, 'Web_2', '10.1.0.6'),
  port('d', RED, 'bad.name', '10.1.0.7'),
  route(RED, '10.1.0.8', 'api'),
  route(RED, '10.1.0.9'),
  route(GREEN, '10.3.0.4', 'cache'),
  ['l/net-red/net-green', { network: RED, peer: GREEN }],
]);

test('names: the scheme, short names at home, leaks, isolation, overlaps, reverse names, refusals', () => {
  const A = RR.A;
  const cases: [string, string, string, number, Rcode, string[]][] = [
    ['a local instance by its long name', RED, 'web1.red.admin.cirrus.internal', A, Rcode.NOERROR, ['10.1.0.5']],
    ['by its short name in its own network', RED, 'web1', A, Rcode.NOERROR, ['10.1.0.5']],
    ['names are case-insensitive; _ is kept', RED, 'web_2', A, Rcode.NOERROR, ['10.1.0.6']],
    ['an instance on another host (route entry)', RED, 'api.red.admin.cirrus.internal', A, Rcode.NOERROR, ['10.1.0.8']],
    ['a leaked network by its long name', RED, 'cache.green.admin.cirrus.internal', A, Rcode.NOERROR, ['10.3.0.4']],
    ["not a leaked network's short name", RED, 'cache', A, Rcode.REFUSED, []],
    ['an isolated network: as if it did not exist', RED, 'db1.blue.admin.cirrus.internal', A, Rcode.NXDOMAIN, []],
    ['the overlapping network sees its own', BLUE, 'db1', A, Rcode.NOERROR, ['10.1.0.5']],
    ['a name that is no DNS label is not published', RED, 'bad.name.red.admin.cirrus.internal', A, Rcode.NXDOMAIN, []],
    ['unknown under the suffix', RED, 'nobody.red.admin.cirrus.internal', A, Rcode.NXDOMAIN, []],
    ['AAAA of an instance: no data, no error', RED, 'web1.red.admin.cirrus.internal', RR.AAAA, Rcode.NOERROR, []],
    ['ANY of an instance', RED, 'web1', RR.ANY, Rcode.NOERROR, ['10.1.0.5']],
    ['reverse, own network first on an overlap', RED, '5.0.1.10.in-addr.arpa', RR.PTR, Rcode.NOERROR, ['web1.red.admin.cirrus.internal']],
    ['the same address from the other network', BLUE, '5.0.1.10.in-addr.arpa', RR.PTR, Rcode.NOERROR, ['db1.blue.admin.cirrus.internal']],
    ['reverse of a leaked address', RED, '4.0.3.10.in-addr.arpa', RR.PTR, Rcode.NOERROR, ['cache.green.admin.cirrus.internal']],
    ['reverse of an unnamed address in the subnet', RED, '9.0.1.10.in-addr.arpa', RR.PTR, Rcode.NXDOMAIN, []],
    ['reverse outside the visible subnets', BLUE, '4.0.3.10.in-addr.arpa', RR.PTR, Rcode.REFUSED, []],
    ['an outside name: no open resolver', RED, 'example.com', A, Rcode.REFUSED, []],
    ['an unknown single label', RED, 'localhost', A, Rcode.REFUSED, []],
    ['a network without a document entry', 'net-gone', 'web1', A, Rcode.REFUSED, []],
  ];
  for (const [what, network, name, qtype, rcode, data] of cases) {
    const r = table.resolve(network, { name, qtype, qclass: 1, opcode: 0 });
    assert.equal(r.rcode, rcode, what);
    assert.deepEqual(r.answers.map((a) => a.data), data, what);
  }
  assert.equal(table.resolve(RED, { name: 'web1', qtype: RR.A, qclass: 3, opcode: 0 }).rcode, Rcode.REFUSED, 'class CH');
  assert.equal(table.resolve(RED, { name: 'web1', qtype: RR.A, qclass: 1, opcode: 2 }).rcode, Rcode.NOTIMP, 'opcode STATUS');
  assert.deepEqual(table.names(RED)?.names.map((n) => n.name).sort(), ['api.red.admin.cirrus.internal', 'web1.red.admin.cirrus.internal', 'web_2.red.admin.cirrus.internal']);
});

test('another suffix', () => {
  const t = new NameTable([net(RED, 'red', '10.1.0.0/24'), port('a', RED, 'web1', '10.1.0.5')], 'corp.example');
  assert.deepEqual(t.resolve(RED, { name: 'web1.red.admin.corp.example', qtype: RR.A, qclass: 1, opcode: 0 }).answers.map((a) => a.data), ['10.1.0.5']);
  assert.equal(t.resolve(RED, { name: 'web1.red.admin.cirrus.internal', qtype: RR.A, qclass: 1, opcode: 0 }).rcode, Rcode.REFUSED);
});
