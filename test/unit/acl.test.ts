// compileAcl: a network's policies → ordered directional rules with addresses as CIDRs;
// AclCompiler: the same as blocks (one per policy), kept while their inputs are unchanged.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StoredObject } from '../../src/config/object.js';
import { AclCompiler, compileAcl } from '../../src/control/acl.js';
import { changeView, viewOf } from '../support/config-objects.js';

const subnetRef = (prefix: string) => [{ uuid: 'ipam', attr: { ipam_subnets: [{ subnet: { ip_prefix: prefix, ip_prefix_len: 24 }, subnet_uuid: `s-${prefix}`, default_gateway: prefix.replace(/0$/, '1'), dns_server_address: prefix.replace(/0$/, '2'), allocation_pools: [] }] } }];
const net = (uuid: string, name: string, prefix: string, policies: [string, number][] = []): StoredObject => ({
  type: 'virtual-network',
  uuid,
  fq_name: ['d', 'p', name],
  props: { virtual_network_network_id: 1 },
  refs: { network_ipam_refs: subnetRef(prefix), network_policy_refs: policies.map(([u, major]) => ({ uuid: u, attr: { sequence: { major, minor: 0 } } })) },
});
const rule = (r: Record<string, unknown>) => ({ direction: '>', protocol: 'any', src_addresses: [{ virtual_network: 'any' }], dst_addresses: [{ virtual_network: 'any' }], action_list: { simple_action: 'pass' }, ...r });
const policy = (uuid: string, rules: Record<string, unknown>[]): StoredObject => ({ type: 'network-policy', uuid, fq_name: ['d', 'p', uuid], props: { network_policy_entries: { policy_rule: rules.map(rule) } }, refs: {} });


test('rules: addresses by network name, local, any and subnet; protocols by name and number; ports only for tcp and udp', () => {
  const p = policy('p1', [
    { rule_uuid: 'r1', protocol: 'tcp', src_addresses: [{ virtual_network: 'local' }], dst_addresses: [{ virtual_network: 'd:p:mgmt' }], dst_ports: [{ start_port: 514, end_port: 514 }, { start_port: 600, end_port: 610 }] },
    { rule_uuid: 'r2', protocol: 'icmp', direction: '<>', src_addresses: [{ subnet: { ip_prefix: '192.168.0.0', ip_prefix_len: 16 } }], dst_ports: [{ start_port: 1, end_port: 2 }] },
    { rule_uuid: 'r3', protocol: '47', action_list: { simple_action: 'deny' } },
    { rule_uuid: 'r4', protocol: 'tcp', dst_addresses: [{ virtual_network: 'd:p:nowhere' }] },
    { rule_uuid: 'r5', protocol: 'bogus' },
  ]);
  const fe = net('fe', 'frontend', '10.1.0.0', [['p1', 0]]);
  const acl = compileAcl(viewOf([p, fe, net('mg', 'mgmt', '10.2.0.0')]), fe);
  assert.deepEqual(acl, [
    { uuid: 'r1', action: 'pass', protocol: 6, src: ['10.1.0.0/24'], dst: ['10.2.0.0/24'], dports: [[514, 514], [600, 610]] },
    { uuid: 'r2', action: 'pass', protocol: 1, src: ['192.168.0.0/16'], dst: null },
    { uuid: 'r2', action: 'pass', protocol: 1, src: null, dst: ['192.168.0.0/16'] },
    { uuid: 'r3', action: 'deny', protocol: 47, src: null, dst: null },
    { uuid: 'r4', action: 'pass', protocol: 6, src: null, dst: [] },
  ], "'<>' is two rules; an unknown network matches nothing ([]); an unknown protocol is no rule");
});

test('order: policies by their sequence, rules by rule_sequence, then as written', () => {
  const a = policy('a', [{ rule_uuid: 'a2', rule_sequence: { major: 2, minor: 0 } }, { rule_uuid: 'a1', rule_sequence: { major: 1, minor: 0 } }]);
  const b = policy('b', [{ rule_uuid: 'b1' }, { rule_uuid: 'b2' }]);
  const n = net('n', 'n', '10.1.0.0', [['a', 5], ['b', 1]]);
  assert.deepEqual(compileAcl(viewOf([a, b, n]), n).map((r) => r.uuid), ['b1', 'b2', 'a1', 'a2']);
});

test('a rule without its own uuid is named after its policy and position; a missing policy is skipped', () => {
  const p = policy('p', [{}]);
  delete (p.props['network_policy_entries'] as { policy_rule: Record<string, unknown>[] }).policy_rule[0]!['rule_uuid'];
  const n = net('n', 'n', '10.1.0.0', [['gone', 0], ['p', 1]]);
  assert.deepEqual(compileAcl(viewOf([p, n]), n).map((r) => r.uuid), ['p:0']);
});

test('ruleMatches: protocol, addresses, destination ports; rules naming source ports match no new connection', async () => {
  const { ruleMatches } = await import('../../src/control/trace.js');
  const r = { uuid: 'r', action: 'pass' as const, protocol: 6, src: ['10.1.0.0/24'], dst: null, dports: [[500, 600]] as [number, number][] };
  const tcp = (port?: number) => ({ protocol: 6, ...(port !== undefined ? { port } : {}) });
  assert.equal(ruleMatches(r, '10.1.0.5', '10.2.0.5', tcp(514)), true);
  assert.equal(ruleMatches(r, '10.1.0.5', '10.2.0.5', tcp(22)), false, 'port outside the range');
  assert.equal(ruleMatches(r, '10.3.0.5', '10.2.0.5', tcp(514)), false, 'source outside the CIDRs');
  assert.equal(ruleMatches(r, '10.1.0.5', '10.2.0.5', { protocol: 17, port: 514 }), false, 'another protocol');
  assert.equal(ruleMatches(r, '10.1.0.5', '10.2.0.5', tcp()), false, 'no port given: a port rule does not match');
  assert.equal(ruleMatches({ ...r, dports: undefined, sports: [[1, 2]] }, '10.1.0.5', '10.2.0.5', tcp(1)), false);
  assert.equal(ruleMatches({ uuid: 'any', action: 'deny', src: null, dst: null }, '1.2.3.4', '5.6.7.8', { protocol: 1 }), true);
  // Addresses as numbers (the flow pipeline's), the same answers.
  const n = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  assert.equal(ruleMatches(r, n('10.1.0.5'), n('10.2.0.5'), tcp(514)), true);
  assert.equal(ruleMatches(r, n('10.3.0.5'), n('10.2.0.5'), tcp(514)), false, 'source outside the CIDRs (numbers)');
});

test('blocks: one per policy in order; an unchanged block is the same object, a change recompiles only what it touches', () => {
  const a = policy('a', [{ rule_uuid: 'a1', dst_addresses: [{ virtual_network: 'd:p:mgmt' }] }]);
  const b = policy('b', [{ rule_uuid: 'b1', dst_addresses: [{ subnet: { ip_prefix: '192.168.1.0', ip_prefix_len: 24 } }] }]);
  const c = policy('c', [{ rule_uuid: 'c1', src_addresses: [{ virtual_network: 'local' }], dst_addresses: [{ virtual_network: 'd:p:later' }] }]);
  const fe = () => net('fe', 'frontend', '10.1.0.0', [['a', 1], ['b', 2], ['c', 3]]);
  const view = viewOf([a, b, c, fe(), net('mg', 'mgmt', '10.2.0.0')]);
  const compiler = new AclCompiler(view);
  const compile = () => compiler.compile(view.get('fe')!.obj);
  const first = compile();
  assert.deepEqual(first.blocks.map((x) => [x.network, x.policy, x.rules.map((r) => r.uuid)]), [['fe', 'a', ['a1']], ['fe', 'b', ['b1']], ['fe', 'c', ['c1']]]);
  assert.deepEqual([first.names.sort(), first.uuids], [['d:p:later', 'd:p:mgmt'], ['mg']], 'the networks named (by name), and those that exist (by uuid)');
  assert.deepEqual(first.blocks.flatMap((x) => x.rules), compileAcl(view, view.get('fe')!.obj), 'compileAcl is the blocks in order');
  const same = (next: ReturnType<typeof compile>, changed: string[], why: string) =>
    assert.deepEqual(next.blocks.map((x, i) => (x === first.blocks[i] ? 'same' : x.policy)), first.blocks.map((x) => (changed.includes(x.policy) ? x.policy : 'same')), why);

  // The network object changes (here: attached again in the same order), nothing the rules depend on does.
  changeView(view, [fe()]);
  same(compile(), [], 'nothing to recompile');
  // A policy edited: its block alone.
  changeView(view, [policy('b', [{ rule_uuid: 'b2' }])]);
  let next = compile();
  same(next, ['b'], 'the edited policy only');
  assert.deepEqual(next.blocks[1]!.rules.map((r) => r.uuid), ['b2']);
  first.blocks[1] = next.blocks[1]!;
  // A named network's subnets change: the blocks naming it.
  changeView(view, [net('mg', 'mgmt', '10.9.0.0')]);
  next = compile();
  same(next, ['a'], 'the policy naming mgmt only');
  assert.deepEqual(next.blocks[0]!.rules[0]!.dst, ['10.9.0.0/24']);
  first.blocks[0] = next.blocks[0]!;
  // A named network that did not exist appears.
  changeView(view, [net('lt', 'later', '10.3.0.0')]);
  next = compile();
  same(next, ['c'], 'the policy naming it');
  assert.deepEqual(next.blocks[2]!.rules[0]!.dst, ['10.3.0.0/24']);
  first.blocks[2] = next.blocks[2]!;
  // `local`: the network's own subnets.
  changeView(view, [{ ...fe(), refs: { ...fe().refs, network_ipam_refs: subnetRef('10.7.0.0') } }]);
  next = compile();
  same(next, ['c'], 'the policy naming local');
  assert.deepEqual(next.blocks[2]!.rules[0]!.src, ['10.7.0.0/24']);
});

test('blocks: a detached policy is forgotten; reordering keeps the blocks', () => {
  const a = policy('a', [{ rule_uuid: 'a1' }]);
  const b = policy('b', [{ rule_uuid: 'b1' }]);
  const view = viewOf([a, b, net('n', 'n', '10.1.0.0', [['a', 1], ['b', 2]])]);
  const compiler = new AclCompiler(view);
  const compile = () => compiler.compile(view.get('n')!.obj).blocks;
  const [ba, bb] = compile();
  changeView(view, [net('n', 'n', '10.1.0.0', [['a', 3], ['b', 2]])]);
  assert.deepEqual(compile(), [bb, ba], 'the same blocks, reordered by sequence');
  changeView(view, [net('n', 'n', '10.1.0.0', [['b', 2]])]);
  assert.deepEqual(compile(), [bb]);
  changeView(view, [net('n', 'n', '10.1.0.0', [['a', 1], ['b', 2]])]);
  const again = compile();
  assert.notEqual(again[0], ba, 'a detached policy is compiled anew when attached again (its block was dropped)');
  assert.deepEqual(again[0], ba);
  assert.equal(again[1], bb);
});
