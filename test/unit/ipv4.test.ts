import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrsOverlap, formatIpv4, normaliseMac, parseCidr, parseIpv4 } from '../../src/util/ipv4.js';

test('parseIpv4 accepts dotted quads only', () => {
  const cases: [string, number | undefined][] = [
    ['0.0.0.0', 0],
    ['192.168.10.1', 0xc0a80a01],
    ['255.255.255.255', 0xffffffff],
    ['256.1.1.1', undefined],
    ['1.2.3', undefined],
    ['1.2.3.4.5', undefined],
    ['01.2.3.4', undefined],
    ['1.2.3.-4', undefined],
    ['a.b.c.d', undefined],
    ['', undefined],
    ['::1', undefined],
  ];
  for (const [text, want] of cases) assert.equal(parseIpv4(text), want, text);
  assert.equal(formatIpv4(0xc0a80a01), '192.168.10.1');
});

test('parseCidr rejects host bits and bad lengths with a reason', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { base: 0x0a000000, prefixLen: 8 });
  assert.match(parseCidr('10.0.0.1/8') as string, /host bits set \(did you mean 10\.0\.0\.0\/8\?\)/);
  assert.match(parseCidr('10.0.0.0/33') as string, /not between 0 and 32/);
  assert.match(parseCidr('10.0.0.0') as string, /not a CIDR/);
  assert.match(parseCidr('10.0.0.300/24') as string, /not an IPv4 address/);
});

test('cidrsOverlap', () => {
  const c = (s: string) => parseCidr(s) as { base: number; prefixLen: number };
  assert.equal(cidrsOverlap(c('10.0.0.0/24'), c('10.0.0.128/25')), true);
  assert.equal(cidrsOverlap(c('10.0.0.0/24'), c('10.0.1.0/24')), false);
  assert.equal(cidrsOverlap(c('0.0.0.0/0'), c('192.168.1.0/24')), true);
});

test('normaliseMac accepts unicast colon MACs only', () => {
  assert.equal(normaliseMac('02:AB:cd:00:11:22'), '02:ab:cd:00:11:22');
  assert.equal(normaliseMac('01:00:5e:00:00:01'), undefined, 'multicast');
  assert.equal(normaliseMac('00:00:00:00:00:00'), undefined);
  assert.equal(normaliseMac('02-ab-cd-00-11-22'), undefined);
  assert.equal(normaliseMac('02:ab:cd:00:11'), undefined);
});
