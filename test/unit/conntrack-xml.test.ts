// conntrack's XML read from its bytes: real lines of conntrack v1.4.7 (events and table, TCP,
// UDP, ICMP, NAT, zones; test/fixtures/conntrack) parse to what they say; what is not an
// IPv4 flow, is cut short or malformed is dropped and counted, never half an entry; lines
// split anywhere across chunks read the same.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConntrackXmlReader, type CtEntry, type CtTuple } from '../../src/agent/flows/conntrack-xml.js';
import { formatIpv4 } from '../../src/util/ipv4.js';

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/conntrack/conntrack-1.4.7.txt');
const fixture = fs.readFileSync(FIXTURE, 'utf8').split('\n');
const LINES = new Map(fixture.flatMap((l, i) => (l.startsWith('## ') ? [[l.slice(3), fixture[i + 1]!] as const] : [])));
const line = (label: string) => LINES.get(label) ?? assert.fail(`no fixture line ${label}`);

const tuple = (t: CtTuple) => `${formatIpv4(t.src)}:${t.sport}>${formatIpv4(t.dst)}:${t.dport} ${t.packets}p/${t.bytes}b`;
/** An entry as one readable line. */
const show = (e: CtEntry) => `${e.event ?? 'table'} id=${e.id} zone=${e.zone} proto=${e.protocol} ${tuple(e.orig)} | ${tuple(e.reply)} start=${e.startUs} stop=${e.stopUs}`;

/** Everything read from `chunks`, and how many lines were dropped. */
function read(...chunks: (string | Buffer)[]): { entries: string[]; unparsed: number } {
  const entries: string[] = [];
  const r = new ConntrackXmlReader((e) => entries.push(show(e)));
  for (const c of chunks) r.push(typeof c === 'string' ? Buffer.from(c) : c);
  r.end();
  return { entries, unparsed: r.unparsed };
}

test('real lines of conntrack 1.4.7 parse to what they say', () => {
  const cases: [label: string, expected: string | undefined][] = [
    ['xml-header', undefined],
    ['xml-root', undefined],
    ['lab-destroy-tcp', 'destroy id=1554015530 zone=2 proto=6 10.61.0.11:38596>10.61.0.12:5300 4p/216b | 10.61.0.12:5300>10.61.0.11:38596 3p/165b start=1795444524622706 stop=1795444534623789'],
    ['lab-table-tcp', 'table id=1554015530 zone=2 proto=6 10.61.0.11:38596>10.61.0.12:5300 4p/216b | 10.61.0.12:5300>10.61.0.11:38596 3p/165b start=1795444524622706 stop=0'],
    ['lab-table-icmp', 'table id=2791332728 zone=2 proto=1 10.61.0.11:0>10.61.0.12:0 1p/84b | 10.61.0.12:0>10.61.0.11:0 1p/84b start=1795444505542447 stop=0'],
    ['lab-table-vxlan', 'table id=3982016732 zone=2 proto=17 10.254.0.2:40338>10.254.0.1:4789 3p/315b | 10.254.0.1:4789>10.254.0.2:40338 0p/0b start=1795443997155701 stop=0'],
    ['ns-new-tcp', 'new id=4066437749 zone=2 proto=6 127.0.0.1:34320>127.0.0.2:5300 0p/0b | 127.0.0.2:5300>127.0.0.1:34320 0p/0b start=0 stop=0'],
    ['ns-new-icmp', 'new id=1185303938 zone=2 proto=1 127.0.0.1:0>127.0.0.2:0 0p/0b | 127.0.0.2:0>127.0.0.1:0 0p/0b start=0 stop=0'],
    ['ns-destroy-udp-unreplied', 'destroy id=1373206163 zone=2 proto=17 127.0.0.1:57897>127.0.0.2:5353 1p/29b | 127.0.0.2:5353>127.0.0.1:57897 0p/0b start=1795443758963570 stop=1795443788963670'],
    ['ns-destroy-icmp', 'destroy id=1185303938 zone=2 proto=1 127.0.0.1:0>127.0.0.2:0 1p/84b | 127.0.0.2:0>127.0.0.1:0 1p/84b start=1795443759327383 stop=1795443789327113'],
    // DNAT: the reply comes from the translated address; no zone set.
    ['ns-destroy-dnat', 'destroy id=238603655 zone=0 proto=6 127.0.0.1:48220>127.0.0.3:80 4p/221b | 127.0.0.2:5300>127.0.0.1:48220 2p/100b start=1795444222565776 stop=1795444224576966'],
    ['ns-table-dnat', 'table id=238603655 zone=0 proto=6 127.0.0.1:48220>127.0.0.3:80 3p/169b | 127.0.0.2:5300>127.0.0.1:48220 1p/60b start=1795444222565776 stop=0'],
    // The original direction's own zone (ct original zone set), printed inside its <meta>.
    ['ns-destroy-orig-zone', 'destroy id=2414611534 zone=7 proto=17 127.0.0.1:54275>127.0.0.4:9999 1p/29b | 127.0.0.4:9999>127.0.0.1:54275 0p/0b start=1795444222566264 stop=1795444224566756'],
    ['xml-end', undefined],
  ];
  for (const [label, expected] of cases) assert.deepEqual(read(`${line(label)}\n`), { entries: expected ? [expected] : [], unparsed: 0 }, label);
});

test('not IPv4, cut short or malformed: dropped and counted, never half an entry', () => {
  const tcp = line('lab-destroy-tcp');
  const cases: [what: string, text: string][] = [
    ['IPv6 (NEW)', line('ns-new-ipv6')],
    ['IPv6 (DESTROY)', line('ns-destroy-ipv6')],
    ['an octet past 255', tcp.replace('<src>10.61.0.11<', '<src>10.61.0.256<')],
    ['three octets', tcp.replace('<src>10.61.0.11<', '<src>10.61.0<')],
    ['five octets', tcp.replace('<src>10.61.0.11<', '<src>10.61.0.11.1<')],
    ['an octet of four digits', tcp.replace('<src>10.61.0.11<', '<src>10.61.0.1100<')],
    ['a leading zero', tcp.replace('<src>10.61.0.11<', '<src>10.61.0.011<')],
    ['a name, not an address', tcp.replace('<dst>10.61.0.12<', '<dst>example.org<')],
    ['letters in a counter', tcp.replace('<packets>4<', '<packets>4x<')],
    ['an empty counter', tcp.replace('<bytes>216<', '<bytes><')],
    ['a counter past 2^53', tcp.replace('<bytes>216<', '<bytes>99999999999999999999<')],
    ['a negative port', tcp.replace('<sport>38596<', '<sport>-1<')],
    ['no id', tcp.replace(/<id>\d+<\/id>/, '')],
    ['no reply source', tcp.replace('<src>10.61.0.12</src>', '')],
    ['a time that is not a number', tcp.replace(/<start>\d+</, '<start>yesterday<')],
    ['a flow inside a flow', tcp.replace('<meta direction="independent">', '<flow><meta direction="independent">')],
    ['no </flow>', tcp.replace('</flow>', '')],
  ];
  for (const [what, text] of cases) assert.deepEqual(read(`${text}\n`), { entries: [], unparsed: 1 }, what);
  // Every prefix of a real line (a reader that died mid-line, a pipe cut short) is dropped.
  for (let n = tcp.indexOf('<flow') + 6; n < tcp.length; n++) assert.deepEqual(read(tcp.slice(0, n)), { entries: [], unparsed: 1 }, `cut at ${n}`);
  // Lines that are no flow at all (conntrack's header, a stray message) are skipped silently.
  assert.deepEqual(read('WARNING: We have hit ENOBUFS! We are losing events.\n\n\u0000\u00ff garbage\n'), { entries: [], unparsed: 0 });
});

test('lines split anywhere across chunks read the same; an overlong line is dropped and the next one read', () => {
  const whole = Buffer.from(fixture.filter((l) => !l.startsWith('#')).join('\n'));
  const expected = read(whole);
  assert.equal(expected.entries.length, 11);
  assert.equal(expected.unparsed, 2, 'the IPv6 lines');
  for (const size of [1, 2, 7, 64, 333, 701, 4096]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < whole.length; i += size) chunks.push(whole.subarray(i, i + size));
    assert.deepEqual(read(...chunks), expected, `chunks of ${size} bytes`);
  }
  const tcp = line('lab-table-tcp');
  const junk = 'x'.repeat(10_000);
  const entry = read(tcp).entries[0]!;
  assert.deepEqual(read(junk, junk, `${tcp}\n`, `${tcp}\n`), { entries: [entry], unparsed: 1 }, 'the line the junk began is dropped whole');
  assert.deepEqual(read(junk, junk, `\n${tcp}`), { entries: [entry], unparsed: 1 });
});
