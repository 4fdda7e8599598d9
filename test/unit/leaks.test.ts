// computeLeaks: two networks leak routes into each other only when the policies of both
// pass traffic between them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StoredObject } from '../../src/config/object.js';
import { computeLeaks } from '../../src/control/leaks.js';
import { policyObject, viewOf } from '../support/config-objects.js';

type Net = 'A' | 'B' | 'C';
const SUBNETS: Record<Net, string> = { A: '10.1.0', B: '10.2.0', C: '10.3.0' };


/** `src > dst`, optionally denied: direction does not matter for leaking. */
type Rule = [src: string, dst: string, action?: 'deny'];
const policy = (uuid: string, rules: Rule[]) => policyObject(uuid, rules.map(([src, dst, action]) => ({ src, dst, ...(action ? { action } : {}) })));

const network = (name: Net, policies: string[]): StoredObject => ({
  type: 'virtual-network',
  uuid: `vn-${name}`,
  fq_name: ['d', 'p', name],
  parent_type: 'project',
  parent_uuid: 'proj',
  props: { virtual_network_network_id: name.charCodeAt(0) },
  refs: {
    network_ipam_refs: [{ uuid: 'ipam', attr: { ipam_subnets: [{ subnet: { ip_prefix: `${SUBNETS[name]}.0`, ip_prefix_len: 24 }, subnet_uuid: `sn-${name}`, default_gateway: `${SUBNETS[name]}.1`, dns_server_address: `${SUBNETS[name]}.2` }] } }],
    ...(policies.length ? { network_policy_refs: policies.map((p, i) => ({ uuid: p, attr: { sequence: { major: i, minor: 0 } } })) } : {}),
  },
});



interface Case {
  name: string;
  policies: Record<string, Rule[]>;
  /** Policies attached to each network (A, B and C always exist). */
  attach: Partial<Record<Net, string[]>>;
  /** Pairs that leak, e.g. 'A-B' (both ways). */
  want: string[];
}

const cases: Case[] = [
  { name: 'one side only allows: no leak', policies: { p: [['local', 'd:p:B']] }, attach: { A: ['p'] }, want: [] },
  { name: 'the other side allows someone else: no leak', policies: { p: [['local', 'd:p:B']], q: [['local', 'd:p:C']] }, attach: { A: ['p'], B: ['q'] }, want: [] },
  { name: 'both allow each other: leak both ways', policies: { p: [['local', 'd:p:B']], q: [['local', 'd:p:A']] }, attach: { A: ['p'], B: ['q'] }, want: ['A-B'] },
  { name: 'the peer as source counts too (replies need the routes back)', policies: { p: [['d:p:B', 'local']], q: [['d:p:A', 'local']] }, attach: { A: ['p'], B: ['q'] }, want: ['A-B'] },
  { name: "'any' on both sides; a network without policy stays out", policies: { p: [['local', 'any']] }, attach: { A: ['p'], B: ['p'] }, want: ['A-B'] },
  { name: "'any' on one side, the peer named on the other", policies: { p: [['local', 'any']], q: [['local', 'd:p:A']] }, attach: { A: ['p'], B: ['q'] }, want: ['A-B'] },
  { name: "'any' on one side, someone else named on the other", policies: { p: [['local', 'any']], q: [['local', 'd:p:C']] }, attach: { A: ['p'], B: ['q'] }, want: [] },
  { name: 'deny rules do not leak', policies: { p: [['local', 'd:p:B', 'deny']], q: [['local', 'any', 'deny']] }, attach: { A: ['p'], B: ['q'] }, want: [] },
  { name: 'a pass on one side and a deny on the other: no leak', policies: { p: [['local', 'd:p:B']], q: [['local', 'd:p:A', 'deny']] }, attach: { A: ['p'], B: ['q'] }, want: [] },
  { name: "'local' is each network the policy is attached to", policies: { p: [['local', 'd:p:C']], q: [['local', 'any']] }, attach: { A: ['p'], B: ['p'], C: ['q'] }, want: ['A-C', 'B-C'] },
  { name: 'a rule naming neither side does nothing for it', policies: { p: [['d:p:B', 'd:p:C']], q: [['local', 'any']] }, attach: { A: ['p'], B: ['q'], C: ['q'] }, want: ['B-C'] },
  { name: 'a subnet address covers the networks its prefix overlaps', policies: { p: [['local', '10.2.0.0/16']], q: [['10.1.0.0/24', 'local']] }, attach: { A: ['p'], B: ['q'] }, want: ['A-B'] },
  { name: 'a subnet address can stand for the own side', policies: { p: [['10.1.0.128/25', 'd:p:B']], q: [['local', 'any']] }, attach: { A: ['p'], B: ['q'] }, want: ['A-B'] },
  { name: 'a subnet that overlaps nothing matches nothing', policies: { p: [['local', '10.9.0.0/16']], q: [['local', 'd:p:A']] }, attach: { A: ['p'], B: ['q'] }, want: [] },
  { name: 'a policy not attached does nothing', policies: { p: [['d:p:A', 'd:p:B']], q: [['local', 'any']] }, attach: {}, want: [] },
  { name: 'a network never leaks into itself', policies: { p: [['local', 'local'], ['local', 'd:p:A']] }, attach: { A: ['p'] }, want: [] },
  { name: 'an unknown network name matches nothing', policies: { p: [['local', 'd:p:nope']], q: [['local', 'any']] }, attach: { A: ['p'], B: ['q'] }, want: [] },
  { name: "several policies' rules add up", policies: { p: [['local', 'd:p:B']], r: [['local', 'd:p:C']], q: [['local', 'any']], s: [['local', 'd:p:A']] }, attach: { A: ['p', 'r'], B: ['q'], C: ['s'] }, want: ['A-B', 'A-C'] },
];

/** Leaks as sorted 'X>Y' directed pairs of network names. */
function directed(objs: StoredObject[]): string[] {
  const name = (uuid: string) => uuid.slice('vn-'.length);
  const out: string[] = [];
  for (const [n, peers] of computeLeaks(viewOf(objs))) for (const p of peers) out.push(`${name(n)}>${name(p)}`);
  return out.sort();
}

for (const c of cases) {
  test(`leaks: ${c.name}`, () => {
    const nets = (['A', 'B', 'C'] as const).map((n) => network(n, c.attach[n] ?? []));
    const policies = Object.entries(c.policies).map(([uuid, rules]) => policy(uuid, rules));
    const want = c.want.flatMap((pair) => [pair.replace('-', '>'), pair.split('-').reverse().join('>')]).sort();
    assert.deepEqual(directed([...policies, ...nets]), want);
  });
}

test('leaks: a network without leaks has no entry at all', () => {
  const leaks = computeLeaks(viewOf([policy('p', [['local', 'any']]), network('A', ['p']), network('B', [])]));
  assert.deepEqual([...leaks.keys()], []);
});
