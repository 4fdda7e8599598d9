import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RuleSyntaxError, formatRule, parseRule } from '../../src/cli/rule-syntax.js';

const P = ['default-domain', 'admin'];

test('parseRule compiles the readable syntax to TF rules', () => {
  const r = parseRule('pass tcp red > green 80', P, 1);
  assert.equal(r.direction, '>');
  assert.equal(r.protocol, 'tcp');
  assert.deepEqual(r.src_addresses, [{ virtual_network: 'default-domain:admin:red' }]);
  assert.deepEqual(r.dst_addresses, [{ virtual_network: 'default-domain:admin:green' }]);
  assert.deepEqual(r.src_ports, [{ start_port: -1, end_port: -1 }]);
  assert.deepEqual(r.dst_ports, [{ start_port: 80, end_port: 80 }]);
  assert.deepEqual(r.action_list, { simple_action: 'pass' });
  assert.deepEqual(r.rule_sequence, { major: 1, minor: 0 });
});

test('parseRule: endpoints, port lists and ranges', () => {
  const r = parseRule('deny udp 10.0.0.0/8 1024-65535 <> other:proj:mgmt 53,5353', P);
  assert.deepEqual(r.src_addresses, [{ subnet: { ip_prefix: '10.0.0.0', ip_prefix_len: 8 } }]);
  assert.deepEqual(r.src_ports, [{ start_port: 1024, end_port: 65535 }]);
  assert.deepEqual(r.dst_addresses, [{ virtual_network: 'other:proj:mgmt' }]);
  assert.deepEqual(r.dst_ports, [
    { start_port: 53, end_port: 53 },
    { start_port: 5353, end_port: 5353 },
  ]);
  assert.deepEqual(parseRule('pass any any <> any', P).src_addresses, [{ virtual_network: 'any' }]);
  assert.equal(parseRule('pass 47 a > b', P).protocol, '47');
});

test('parseRule rejects bad rules with a reason', () => {
  const bad: [string, RegExp][] = [
    ['', /missing action/],
    ['allow tcp a > b', /action 'allow'/],
    ['pass gre a > b', /protocol 'gre'/],
    ['pass tcp a', /missing direction/],
    ['pass tcp a -> b', /direction '->'/],
    ['pass tcp a > b 99999', /invalid/],
    ['pass tcp a > b 80 extra', /unexpected 'extra'/],
    ['pass icmp a > b 80', /ports need tcp or udp/],
    ['pass tcp 10.0.0.1/8 > b', /host bits/],
    ['pass tcp a:b > c', /not any, a network name/],
  ];
  for (const [text, why] of bad) assert.throws(() => parseRule(text, P), (e: Error) => e instanceof RuleSyntaxError && why.test(e.message), text);
});

test('formatRule writes rules back readably', () => {
  assert.equal(formatRule(parseRule('pass tcp red 1000-2000 > 10.1.0.0/16 80,443', P) as unknown as Record<string, unknown>), 'pass tcp default-domain:admin:red 1000-2000 > 10.1.0.0/16 80,443');
});
