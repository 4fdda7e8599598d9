// The CLI's security-group rule syntax: parsed into TF's rule shape, and written back.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RuleSyntaxError } from '../../src/cli/rule-syntax.js';
import { formatSgRule, parseSgRule } from '../../src/cli/sg-rule-syntax.js';

const P = ['default-domain', 'admin'];

test('rules round-trip through TF shape: direction, protocol, peer (any, CIDR, group), ports', () => {
  for (const [text, back] of [
    ['ingress tcp any 22', 'ingress tcp any 22'],
    ['ingress tcp web 5432', 'ingress tcp default-domain:admin:web 5432'],
    ['egress any any', 'egress any any'],
    ['egress udp 10.0.0.0/8 53,1000-2000', 'egress udp 10.0.0.0/8 53,1000-2000'],
    ['INGRESS icmp d:p:g', 'ingress icmp d:p:g'],
  ]) {
    assert.equal(formatSgRule(parseSgRule(text!, P)), back, text);
  }
  const r = parseSgRule('ingress tcp web 80', P);
  assert.deepEqual(r['dst_addresses'], [{ security_group: 'local' }], 'ingress: the group is the destination');
  assert.deepEqual(r['src_addresses'], [{ security_group: 'default-domain:admin:web' }]);
});

test('bad rules are refused with the reason', () => {
  for (const [text, why] of [
    ['sideways tcp any', /direction 'sideways'/],
    ['ingress gre any', /protocol 'gre'/],
    ['ingress icmp any 22', /ports need tcp or udp/],
    ['ingress tcp 10.0.0.1/8', /not the network address|host bits|10\.0\.0\.1/],
    ['ingress tcp a:b any', /is not any, a CIDR/],
    ['ingress tcp any 22 extra', /unexpected 'extra'/],
    ['ingress', /missing protocol/],
  ] as const) {
    assert.throws(() => parseSgRule(text, P), (e: unknown) => e instanceof RuleSyntaxError && why.test(e.message), text);
  }
});
