// The planner, pure and table-driven: what changes, what it does about it, in which order,
// and what it refuses to touch.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ActualObject, DesiredObject, Kind } from '../../src/topology/model.js';
import { covers, plan } from '../../src/topology/plan.js';

type Json = Record<string, unknown>;
const T = 'demo';
const P = ['default-domain', 'admin'];
const fqOf = (kind: Kind, name: string) => (kind === 'workload' ? [name] : kind === 'project' ? P : [...P, name]);
const want = (kind: Kind, name: string, spec: Json = {}): DesiredObject => ({ kind, fq: fqOf(kind, name), spec, body: {}, at: [] });
/** `owner` null: made by hand (no mark). */
const have = (kind: Kind, name: string, spec: Json = {}, owner: string | null = T): ActualObject => ({
  kind,
  fq: fqOf(kind, name),
  uuid: `uuid-${name}`,
  owner: owner ?? undefined,
  spec,
  raw: {},
});
/** `+ virtual-network red`, `~ workload w (command)`... */
const show = (d: DesiredObject[], a: ActualObject[]) => {
  const p = plan(T, d, a);
  const sign = { create: '+', update: '~', replace: '±', delete: '-', unchanged: '=' } as const;
  return {
    steps: p.steps.map((s) => `${sign[s.action]} ${s.kind} ${s.fq.at(-1)}${s.changes.length ? ` (${s.changes.map((c) => c.field).join(',')})` : ''}`),
    conflicts: p.conflicts.map((c) => `${c.desired.kind} ${c.desired.fq.at(-1)} (${c.actual.owner ?? 'by hand'})`),
  };
};

test('covers: undefined is unmanaged, arrays match element-wise and in length, objects by their given keys', () => {
  const cases: [unknown, unknown, boolean][] = [
    [undefined, 5, true],
    [5, 5, true],
    [5, undefined, false],
    [false, false, true],
    [[1, 2], [1, 2], true],
    [[1, 2], [2, 1], false],
    [[1], [1, 2], false],
    [[], [], true],
    [{ cidr: 'a', gateway: undefined }, { cidr: 'a', gateway: 'g', dns: 'd' }, true],
    [{ cidr: 'a', gateway: 'x' }, { cidr: 'a', gateway: 'g' }, false],
    [[{ cidr: 'a' }], [{ cidr: 'a', gateway: 'g' }], true],
    [{ a: 1 }, null, false],
    [['x'], 'x', false],
  ];
  for (const [d, a, expected] of cases) assert.equal(covers(d, a), expected, `${JSON.stringify(d)} vs ${JSON.stringify(a)}`);
});

test('plans: create, unchanged, update, replace, delete, conflicts, in dependency order', () => {
  const red = { subnets: [{ cidr: '10.0.0.0/24', gateway: undefined }], vni: undefined, router_external: false, policies: ['p'] };
  const redNow = { subnets: [{ cidr: '10.0.0.0/24', gateway: '10.0.0.1' }], vni: 8388609, router_external: false, policies: ['p'] };
  const cases: { name: string; desired: DesiredObject[]; actual: ActualObject[]; steps: string[]; conflicts?: string[] }[] = [
    {
      name: 'empty API: everything is created, targets before what refers to them',
      desired: [want('floating-ip', 'vip'), want('workload', 'w'), want('virtual-network', 'red', red), want('network-policy', 'p'), want('floating-ip-pool', 'pool'), want('project', 'admin')],
      actual: [],
      steps: ['+ project admin', '+ network-policy p', '+ virtual-network red', '+ floating-ip-pool pool', '+ workload w', '+ floating-ip vip'],
    },
    {
      name: 'applied before: nothing changes (server-filled gateway and VNI are not the file\'s business)',
      desired: [want('virtual-network', 'red', red), want('network-policy', 'p', { rules: ['pass any a <> b'] })],
      actual: [have('virtual-network', 'red', redNow), have('network-policy', 'p', { rules: ['pass any a <> b'] })],
      steps: ['= network-policy p', '= virtual-network red'],
    },
    {
      name: 'one field changed: only that object is updated, and the change is named',
      desired: [want('virtual-network', 'red', { ...red, vni: 5 }), want('network-policy', 'p', { rules: ['pass any a <> b'] })],
      actual: [have('virtual-network', 'red', redNow), have('network-policy', 'p', { rules: ['pass any a <> b'] })],
      steps: ['= network-policy p', '~ virtual-network red (vni)'],
    },
    {
      name: 'policy order matters; a workload whose host changes is made anew, its command is updated in place',
      desired: [want('virtual-network', 'red', { ...red, policies: ['q', 'p'] }), want('workload', 'w1', { host: 'h2', command: [] }), want('workload', 'w2', { host: 'h1', command: ['x'] })],
      actual: [have('virtual-network', 'red', { ...redNow, policies: ['p', 'q'] }), have('workload', 'w1', { host: 'h1', command: [] }), have('workload', 'w2', { host: 'h1', command: [] })],
      steps: ['~ virtual-network red (policies)', '± workload w1 (host)', '~ workload w2 (command)'],
    },
    {
      name: 'a floating IP whose address changes is replaced; its ports are updated in place',
      desired: [want('floating-ip', 'a', { address: '1.1.1.2', ports: ['x'] }), want('floating-ip', 'b', { address: undefined, ports: ['x', 'y'] })],
      actual: [have('floating-ip', 'a', { address: '1.1.1.1', ports: ['x'] }), have('floating-ip', 'b', { address: '1.1.1.9', ports: ['x'] })],
      steps: ['± floating-ip a (address)', '~ floating-ip b (ports)'],
    },
    {
      name: 'removed from the file: deleted after the creates and updates, in reverse dependency order; others\' objects are left alone',
      desired: [want('virtual-network', 'green')],
      actual: [
        have('network-policy', 'p'),
        have('virtual-network', 'red'),
        have('floating-ip', 'vip'),
        have('workload', 'w'),
        have('virtual-network', 'hand', {}, null),
        have('virtual-network', 'theirs', {}, 'other'),
      ],
      steps: ['+ virtual-network green', '- floating-ip vip', '- workload w', '- virtual-network red', '- network-policy p'],
    },
    {
      name: 'wanted objects made by hand or by another file are conflicts; containers are used as they are',
      desired: [want('project', 'admin'), want('network-ipam', 'default-network-ipam'), want('virtual-network', 'red'), want('workload', 'w'), want('security-group', 'web')],
      actual: [
        have('project', 'admin', {}, null),
        have('network-ipam', 'default-network-ipam', {}, 'other'),
        have('virtual-network', 'red', {}, null),
        have('workload', 'w', {}, 'other'),
      ],
      steps: ['= project admin', '= network-ipam default-network-ipam', '+ security-group web'],
      conflicts: ['virtual-network red (by hand)', 'workload w (other)'],
    },
    {
      name: 'delete -f: nothing wanted, everything marked goes, containers last',
      desired: [],
      actual: [have('project', 'admin'), have('network-ipam', 'default-network-ipam'), have('virtual-network', 'red'), have('floating-ip-pool', 'pool'), have('floating-ip', 'f')],
      steps: ['- floating-ip f', '- floating-ip-pool pool', '- virtual-network red', '- network-ipam default-network-ipam', '- project admin'],
    },
  ];
  for (const c of cases) assert.deepEqual(show(c.desired, c.actual), { steps: c.steps, conflicts: c.conflicts ?? [] }, c.name);
});

test('a plan applied to the state it leads to is all unchanged (idempotence)', () => {
  const desired = [want('virtual-network', 'red', { vni: 5, policies: [] }), want('workload', 'w', { host: 'h1', command: ['x'], running: true })];
  const after = desired.map((d) => have(d.kind, d.fq.at(-1)!, { ...d.spec, extra: 'server-filled' }));
  assert.ok(plan(T, desired, after).steps.every((s) => s.action === 'unchanged'));
  // A program that stopped is started again.
  after[1]!.spec['running'] = false;
  assert.deepEqual(show(desired, after).steps, ['= virtual-network red', '~ workload w (running)']);
});
