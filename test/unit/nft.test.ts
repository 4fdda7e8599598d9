// The nftables side of policies: rules rendered into per-network chains, conntrack zones,
// and the script from the kernel's tables to the desired ones.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostState, NetworkState, PortState } from '../../src/agent/host-state.js';
import type { AclRule, SgEntry } from '../../src/control/protocol.js';
import { type NftTable, aclChain, blockTag, desiredNft, groupChain, nftScript, ruleMapChains, sgChainKey, zonesOf } from '../../src/agent/dataplane/nft.js';

const net = (uuid: string, id: number, subnet: string, acl?: NetworkState['acl']): NetworkState => ({ uuid, name: uuid, id, table: 1_000_000 + id, serviceAddresses: [], subnets: [subnet], vni: 100 + id, ...(acl ? { acl } : {}) });
const port = (hostIf: string, network: string): PortState => ({
  vmiUuid: hostIf,
  network,
  hostIf,
  mac: '02:00:00:00:00:01',
  address: '10.0.0.3',
  prefixLen: 24,
  registration: { vmiUuid: hostIf, mode: 'create', netns: 'w', ifname: 'eth0', enabled: true, createdAt: '' },
});
const host = (networks: NetworkState[], ports: PortState[], leaks: HostState['leaks'] = []): HostState => ({ networks, ports, remotes: [], leaks, pending: [] });

const SG_DROP = 'counter log prefix "cirrus-deny s security groups" group 7 snaplen 64 drop comment "security groups"';

const FE = net('fe', 1, '10.1.0.0/24', [
  { uuid: 'r1', action: 'pass', protocol: 6, src: ['10.1.0.0/24'], dst: ['10.2.0.0/24'], dports: [[514, 514], [600, 610]] },
  { uuid: 'r2', action: 'deny', protocol: 1, src: null, dst: null },
  { uuid: 'r3', action: 'pass', src: null, dst: [] },
]);

test('a chain per side: rules in order with their uuid and a counter, then the default (own network passes, others drop)', () => {
  assert.deepEqual(aclChain(FE, 'out').rules, [
    'ip saddr 10.1.0.0/24 ct original ip daddr 10.2.0.0/24 meta l4proto 6 th dport { 514, 600-610 } counter return comment "r1"',
    'meta l4proto 1 counter log prefix "cirrus-deny p r2" group 7 snaplen 64 drop comment "r2"',
    'ct original ip daddr { 10.1.0.0/24 } return',
    'counter log prefix "cirrus-deny p default" group 7 snaplen 64 drop comment "default"',
  ], 'a rule that can match nothing (r3) is left out; drops are logged with their rule (flow records of denied attempts)');
  assert.deepEqual(aclChain(FE, 'in').rules.slice(-2), ['ip saddr { 10.1.0.0/24 } return', 'counter log prefix "cirrus-deny p default" group 7 snaplen 64 drop comment "default"']);
  assert.match(aclChain(FE, 'in').rules[0]!, / return comment "r1"$/, 'a pass returns to the next check (security groups)');
});

test('zones: networks that leak into each other share the smallest id of their group; others have their own', () => {
  const h = host([net('a', 7, '10.7.0.0/24'), net('b', 3, '10.3.0.0/24'), net('c', 5, '10.5.0.0/24'), net('d', 9, '10.9.0.0/24')], [], [{ network: 'a', peer: 'b' }, { network: 'b', peer: 'c' }]);
  assert.deepEqual([...zonesOf(h)], [['a', 4], ['b', 4], ['c', 4], ['d', 10]]);
});

test('desired tables: ports of networks with policies jump to their chains; every network has a zone and a VNI mark', () => {
  const d = desiredNft(host([FE, net('plain', 2, '10.2.0.0/24')], [port('cv-a', 'fe'), port('cv-b', 'plain')]));
  assert.deepEqual([...d.ip.maps.get('port_out')!], [['"cv-a"', 'jump pol_out_1']]);
  assert.deepEqual([...d.ip.maps.get('port_in')!], [['"cv-a"', 'jump pol_in_1']]);
  assert.deepEqual([...d.ip.chains.keys()], ['pol_out_1', 'pol_in_1']);
  assert.deepEqual([...d.ip.maps.get('mark_zones')!], [['1000001', '2'], ['1000002', '3']]);
  assert.deepEqual([...d.ip.maps.get('vni_marks')!], [['101', '1000001'], ['102', '1000002']]);
  assert.deepEqual([...d.arp.maps.get('port_marks')!], [['"cv-a"', '1000001'], ['"cv-b"', '1000002']]);
});

const asRead = (t: NftTable): NftTable => ({ maps: new Map([...t.maps].map(([k, m]) => [k, new Map(m)])), chains: new Map([...t.chains.keys()].map((c) => [c, []])) });

test('script: a missing table is made whole, a stale one replaced; then only what changed is written', () => {
  const h = host([FE], [port('cv-a', 'fe')]);
  const d = desiredNft(h);
  const fresh = nftScript(d, { ip: 'missing', arp: 'stale' }, new Map());
  assert.equal(fresh.lines[0], 'table ip cirrus {');
  assert.ok(fresh.lines.includes('delete table arp cirrus'), 'an older layout goes in the same transaction');
  assert.ok(fresh.lines.indexOf('  chain pol_out_1 {') < fresh.lines.findIndex((l) => l.startsWith('add element ip cirrus port_out')), 'chains exist before elements jump to them');
  const applied = new Map([...fresh.written]);
  assert.deepEqual(nftScript(d, { ip: asRead(d.ip), arp: asRead(d.arp) }, applied).lines, [], 'converged: nothing to do');

  const changed = desiredNft(host([{ ...FE, acl: FE.acl!.slice(1) }], [port('cv-a', 'fe')]));
  const s = nftScript(changed, { ip: asRead(d.ip), arp: asRead(d.arp) }, applied);
  assert.equal(s.lines[0], 'flush chain ip cirrus pol_out_1', 'a changed chain is flushed and rewritten in one transaction');
  assert.deepEqual([...s.written.keys()], ['ip/pol_out_1', 'ip/pol_in_1']);

  const gone = nftScript(desiredNft(host([FE], [])), { ip: asRead(d.ip), arp: asRead(d.arp) }, applied).lines;
  assert.ok(gone.indexOf('delete element ip cirrus port_out { "cv-a" }') < gone.indexOf('delete chain ip cirrus pol_out_1'), 'elements go before the chains they jump to');
});

test('anti-spoofing: a guarded port may send from its address and MAC and its allowed pairs; port security off: not guarded', () => {
  const a = { ...port('cv-a', 'fe'), allowedAddressPairs: [{ cidr: '10.9.0.0/24', mac: '02:00:00:00:00:09' }, { cidr: '10.8.0.7/32', mac: '02:00:00:00:00:01' }] };
  const open = { ...port('cv-b', 'fe'), portSecurity: false as const };
  const d = desiredNft(host([FE], [a, open]));
  assert.deepEqual([...d.ip.maps.get('ports')!.keys()], ['"cv-a"', '"cv-b"'], 'both are protected from reaching the host');
  assert.deepEqual([...d.ip.maps.get('guarded')!.keys()], ['"cv-a"']);
  assert.deepEqual([...d.ip.maps.get('port_addrs')!.keys()], ['"cv-a" . 10.0.0.3 . 02:00:00:00:00:01', '"cv-a" . 10.9.0.0/24 . 02:00:00:00:00:09', '"cv-a" . 10.8.0.7 . 02:00:00:00:00:01']);
  assert.deepEqual([...d.arp.maps.get('port_addrs')!.keys()], [...d.ip.maps.get('port_addrs')!.keys()], 'ARP is held to the same addresses');
});

test('security groups: ports in the same groups share chains; any rule of any group allows, else drop', () => {
  const web: SgEntry = { uuid: 'web', name: 'd:p:web', ingress: [{ uuid: 'w1', action: 'pass' as const, protocol: 6, src: null, dst: null, dports: [[80, 80]] as [number, number][] }], egress: [] };
  const ssh: SgEntry = { uuid: 'ssh', name: 'd:p:ssh', ingress: [{ uuid: 's1', action: 'pass' as const, protocol: 6, src: ['10.9.0.0/24'], dst: null, dports: [[22, 22]] as [number, number][] }], egress: [{ uuid: 's2', action: 'pass' as const, src: null, dst: null }] };
  const groups = new Map<string, SgEntry>([['web', web], ['ssh', ssh]]);
  assert.deepEqual(groupChain(['web', 'ssh'], groups, 'ingress'), [
    'meta l4proto 6 th dport 80 counter return comment "w1"',
    'ip saddr 10.9.0.0/24 meta l4proto 6 th dport 22 counter return comment "s1"',
    SG_DROP,
  ]);
  assert.deepEqual(groupChain(['web'], groups, 'egress'), [SG_DROP], 'no egress rule: nothing leaves');
  assert.deepEqual(groupChain(['gone'], groups, 'ingress'), [SG_DROP], 'a group not known yet allows nothing');
  const a = { ...port('cv-a', 'fe'), securityGroups: ['web', 'ssh'] };
  const b = { ...port('cv-b', 'fe'), securityGroups: ['ssh', 'web'] };
  const c = port('cv-c', 'fe');
  const d = desiredNft({ ...host([FE], [a, b, c]), groups });
  const k = sgChainKey(['web', 'ssh']);
  assert.deepEqual([...d.ip.maps.get('port_sg_in')!], [['"cv-a"', `jump sg_in_${k}`], ['"cv-b"', `jump sg_in_${k}`]], 'the same groups in another order share one chain; no groups: no filtering');
});

test('a long run of rules differing in single values becomes one verdict map, first match kept; other rules stay rules', () => {
  const filler = (i: number, action: 'pass' | 'deny') => ({ uuid: `f${i}`, action, protocol: 6, src: ['10.1.0.0/24'], dst: [`172.16.0.${i}/32`], dports: [[20000 + i, 20000 + i]] as [number, number][] });
  const acl: AclRule[] = [
    ...Array.from({ length: 10 }, (_, i) => filler(i, i % 2 ? 'deny' : 'pass')),
    { ...filler(3, 'deny'), uuid: 'dup' }, // the same key again: the first verdict stays
    { uuid: 'last', action: 'pass' as const, protocol: 6, src: ['10.1.0.0/24'], dst: ['10.1.0.0/24'] },
  ];
  // Rules without blocks (one anonymous block): its maps are acl_1_<tag>_<k>, for both sides.
  const out0 = `acl_1_${blockTag('')}_0`;
  const c = aclChain({ ...FE, acl }, 'out');
  assert.deepEqual(c.rules, [
    `ip saddr 10.1.0.0/24 meta l4proto . ct original ip daddr . th dport vmap @${out0} comment "11 rules"`,
    'ip saddr 10.1.0.0/24 ct original ip daddr 10.1.0.0/24 meta l4proto 6 counter return comment "last"',
    'ct original ip daddr { 10.1.0.0/24 } return',
    'counter log prefix "cirrus-deny p default" group 7 snaplen 64 drop comment "default"',
  ]);
  assert.equal(c.maps.length, 1);
  assert.equal(c.maps[0]!.declaration, 'typeof meta l4proto . ct original ip daddr . th dport : verdict');
  assert.equal(c.maps[0]!.elements.size, 10);
  assert.equal(c.maps[0]!.elements.get('6 . 172.16.0.3 . 20003'), 'drop');
  assert.equal(c.maps[0]!.elements.get('6 . 172.16.0.2 . 20002'), 'return');
  assert.equal(aclChain({ ...FE, acl: acl.slice(0, 5) }, 'out').maps.length, 0, 'short runs stay rules');
  // The script: the map exists before the chain uses it; a changed element alone rewrites no chain.
  const h = (rules: AclRule[]) => host([{ ...FE, acl: rules }], [port('cv-a', 'fe')]);
  const d = desiredNft(h(acl));
  const first = nftScript(d, { ip: 'missing', arp: 'missing' }, new Map());
  assert.ok(first.lines.indexOf(`  map ${out0} { typeof meta l4proto . ct original ip daddr . th dport : verdict; }`) < first.lines.indexOf('  chain pol_out_1 {'));
  const changed = acl.map((r): AclRule => (r.uuid === 'f2' ? { ...r, action: 'deny' } : r));
  const s = nftScript(desiredNft(h(changed)), { ip: asRead(d.ip), arp: asRead(d.arp) }, first.written);
  assert.deepEqual(s.lines, [
    `delete element ip cirrus ${out0} { 6 . 172.16.0.2 . 20002 }`,
    `add element ip cirrus ${out0} { 6 . 172.16.0.2 . 20002 : drop }`,
  ], 'an element changed in the map both sides share, no chain rewritten');
  assert.deepEqual([...s.changedMaps], [out0]);
});

test('blocks: each rendered once, its maps named after its policy; a changed block leaves the others (and their maps) untouched', () => {
  const filler = (p: string, i: number): AclRule => ({ uuid: `${p}${i}`, action: 'pass', protocol: 6, src: null, dst: [`172.16.0.${i}/32`], dports: [[20000 + i, 20000 + i]] });
  const block = (policy: string, n = 10) => ({ network: 'fe', policy, rules: Array.from({ length: n }, (_, i) => filler(policy, i)) });
  const [a, b] = [block('pa'), block('pb')];
  const withBlocks = (blocks: (typeof a)[]) => ({ ...FE, acl: blocks.flatMap((x) => x.rules), aclBlocks: blocks });
  const out = aclChain(withBlocks([a, b]), 'out');
  const mapA = `acl_1_${blockTag('pa')}_0`;
  const mapB = `acl_1_${blockTag('pb')}_0`;
  assert.deepEqual(out.maps.map((m) => m.name), [mapA, mapB], 'a run never spans two blocks');
  assert.deepEqual(out.rules.slice(0, 2), [`meta l4proto . ct original ip daddr . th dport vmap @${mapA} comment "10 rules"`, `meta l4proto . ct original ip daddr . th dport vmap @${mapB} comment "10 rules"`]);
  const inside = aclChain(withBlocks([a, b]), 'in');
  assert.equal(inside.maps[0], out.maps[0], 'both sides share the rendering and the maps');
  assert.deepEqual(inside.rules.slice(0, 2), out.rules.slice(0, 2));
  // Reordered: the maps keep their names (their policies'), the chain changes.
  assert.deepEqual(aclChain(withBlocks([b, a]), 'out').maps.map((m) => m.name), [mapB, mapA]);
  // pb edited (a new block object): pa's map is the very same object, so the script skips it.
  const h = (blocks: (typeof a)[]) => host([withBlocks(blocks)], [port('cv-a', 'fe')]);
  const d = desiredNft(h([a, b]));
  const first = nftScript(d, { ip: 'missing', arp: 'missing' }, new Map());
  const applied = new Map([...d.ip.ruleMaps!.keys()].map((name) => [`ip/${name}`, d.ip.maps.get(name)!]));
  const b2 = { ...b, rules: b.rules.map((r, i) => (i === 3 ? { ...r, action: 'deny' as const } : r)) };
  const d2 = desiredNft(h([a, b2]));
  assert.equal(d2.ip.maps.get(mapA), d.ip.maps.get(mapA));
  const s = nftScript(d2, { ip: asRead(d.ip), arp: asRead(d.arp) }, first.written, applied);
  assert.deepEqual(s.lines, [`delete element ip cirrus ${mapB} { 6 . 172.16.0.3 . 20003 }`, `add element ip cirrus ${mapB} { 6 . 172.16.0.3 . 20003 : drop }`]);
  assert.deepEqual([...s.changedMaps], [mapB]);
  // A block detached: its map goes after the chains stop using it.
  const s3 = nftScript(desiredNft(h([a])), { ip: asRead(d.ip), arp: asRead(d.arp) }, first.written, applied);
  assert.ok(s3.lines.indexOf(`delete map ip cirrus ${mapB}`) > s3.lines.indexOf('flush chain ip cirrus pol_out_1'));
});

test("ruleMapChains: a rule map belongs to both of its network's chains", () => {
  assert.deepEqual(ruleMapChains(`acl_12_${blockTag('p')}_3`), ['pol_out_12', 'pol_in_12']);
});
