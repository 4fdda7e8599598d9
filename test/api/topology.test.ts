// `cirrus apply -f` / `delete -f` against the real server (no lab: networks, policies,
// security groups, floating IPs): apply, re-apply changes nothing, a modified field
// updates only its object, a removed object is deleted, objects made by hand or by other
// files are never touched, a failure midway is completed by a re-run.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningServer, call, runCli, startServer } from '../support/server.js';

let srv: RunningServer;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-topology-'));

before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv?.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

type Json = Record<string, any>;

const cirrus = (...args: string[]) => runCli(srv.url, ...args);

/** Writes `text` as FILE and runs `cirrus -o json VERB -f FILE ...`; returns the plan as "action kind name" lines. */
async function topo(verb: 'apply' | 'delete', file: string, text: string | undefined, ...extra: string[]): Promise<{ steps: string[]; made: number }> {
  const f = path.join(dir, file);
  if (text !== undefined) fs.writeFileSync(f, text);
  const r = await cirrus('-o', 'json', verb, '-f', f, ...extra);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { plan: Json[]; changes_made: number };
  return { steps: out.plan.map((s) => `${s['action']} ${s['kind']} ${(s['fq_name'] as string[]).join(':')}`), made: out.changes_made };
}

const changed = (steps: string[]) => steps.filter((s) => !s.startsWith('unchanged'));
const list = async (type: string): Promise<Json[]> => ((await call(srv.url, 'GET', `/${type}s?detail=True`)).body[`${type}s`] as Json[]).map((e) => e[type]);
const byName = async (type: string, name: string) => (await list(type)).find((o) => o['fq_name'].at(-1) === name);

const BASE = `
name: shop
networks:
  - name: red
    subnets: [192.168.10.0/24]
    policies: [pass-all]
  - name: green
    subnets: [{cidr: 192.168.20.0/24, gateway: 192.168.20.254}]
    vni: 20
    policies: [pass-all]
  - name: public
    subnets: [203.0.113.0/24]
    router_external: true
policies:
  - name: pass-all
    rules: [pass any red <> green]
security_groups:
  - name: web
    rules: [ingress tcp any 80, egress any any]
floating_ips:
  - name: vip
    network: public
    address: 203.0.113.10
    ports: [hand-port-1, hand-port-2]
`;

test('apply, re-apply, modify, remove, delete -f: only this file\'s objects, in order', async () => {
  // Made by hand: two ports the floating IP points at (ECMP), a network and a group.
  assert.equal((await cirrus('network', 'create', 'hand-net', '--subnet', '10.9.0.0/24')).code, 0);
  for (const p of ['hand-port-1', 'hand-port-2']) assert.equal((await cirrus('port', 'create', '--network', 'hand-net', '--name', p)).code, 0);
  assert.equal((await cirrus('sg', 'create', 'hand-sg', '--rule', 'ingress tcp any 22')).code, 0);

  const dry = await topo('apply', 'shop.yaml', BASE, '--dry-run');
  assert.equal(dry.made, 0);
  assert.equal(await byName('virtual-network', 'red'), undefined, 'a dry run changes nothing');

  const first = await topo('apply', 'shop.yaml', BASE);
  assert.deepEqual(changed(first.steps), [
    'create network-policy default-domain:admin:pass-all',
    'create security-group default-domain:admin:web',
    'create virtual-network default-domain:admin:red',
    'create virtual-network default-domain:admin:green',
    'create virtual-network default-domain:admin:public',
    'create floating-ip-pool default-domain:admin:public:floating-ip-pool',
    'create floating-ip default-domain:admin:public:floating-ip-pool:vip',
  ]);
  assert.equal(first.made, 7);
  const green = (await byName('virtual-network', 'green'))!;
  assert.deepEqual(green['annotations'], { key_value_pair: [{ key: 'cirrus.topology', value: 'shop' }] });
  assert.equal(green['virtual_network_properties'].vxlan_network_identifier, 20);
  assert.equal(green['network_ipam_refs'][0].attr.ipam_subnets[0].default_gateway, '192.168.20.254');
  assert.deepEqual(green['network_policy_refs'].map((r: Json) => r['to'].at(-1)), ['pass-all']);
  const vip = (await byName('floating-ip', 'vip'))!;
  assert.deepEqual(vip['virtual_machine_interface_refs'].map((r: Json) => r['to'].at(-1)).sort(), ['hand-port-1', 'hand-port-2']);
  const before = new Map((await list('virtual-network')).map((n) => [n['uuid'], n['id_perms'].last_modified]));

  const again = await topo('apply', 'shop.yaml', BASE);
  assert.deepEqual(changed(again.steps), [], 'the second apply changes nothing');
  assert.equal(again.made, 0);

  // One field of one network, one rule of the policy, one back end less.
  const modified = BASE.replace('vni: 20', 'vni: 21').replace('pass any red <> green', 'pass tcp red > green 80').replace('ports: [hand-port-1, hand-port-2]', 'ports: [hand-port-1]');
  const upd = await topo('apply', 'shop.yaml', modified);
  assert.deepEqual(changed(upd.steps), [
    'update network-policy default-domain:admin:pass-all',
    'update virtual-network default-domain:admin:green',
    'update floating-ip default-domain:admin:public:floating-ip-pool:vip',
  ]);
  const after = await list('virtual-network');
  for (const n of after.filter((x) => x['fq_name'].at(-1) !== 'green')) assert.equal(n['id_perms'].last_modified, before.get(n['uuid']), `${n['fq_name'].at(-1)} untouched`);
  const green2 = (await byName('virtual-network', 'green'))!;
  assert.equal(green2['uuid'], green['uuid']);
  assert.equal(green2['virtual_network_properties'].vxlan_network_identifier, 21);
  assert.equal(green2['network_ipam_refs'][0].attr.ipam_subnets[0].subnet_uuid, green['network_ipam_refs'][0].attr.ipam_subnets[0].subnet_uuid, 'the subnet keeps its uuid');
  assert.equal((await byName('floating-ip', 'vip'))!['uuid'], vip['uuid']);

  // The group and the floating IP leave the file: they go, the pool with them; hand-made objects stay.
  const removed = modified.replace(/security_groups:[\s\S]*$/, '');
  const rm = await topo('apply', 'shop.yaml', removed);
  assert.deepEqual(changed(rm.steps), [
    'delete floating-ip default-domain:admin:public:floating-ip-pool:vip',
    'delete floating-ip-pool default-domain:admin:public:floating-ip-pool',
    'delete security-group default-domain:admin:web',
  ]);
  assert.equal(await byName('security-group', 'web'), undefined);
  assert.ok(await byName('security-group', 'hand-sg'));

  const gone = await topo('delete', 'shop.yaml', undefined);
  assert.deepEqual(changed(gone.steps), [
    'delete virtual-network default-domain:admin:red',
    'delete virtual-network default-domain:admin:green',
    'delete virtual-network default-domain:admin:public',
    'delete network-policy default-domain:admin:pass-all',
  ]);
  const left = (await list('virtual-network')).map((n) => n['fq_name'].at(-1));
  assert.deepEqual(left, ['hand-net']);
  assert.deepEqual((await list('virtual-machine-interface')).map((p) => p['fq_name'].at(-1)).sort(), ['hand-port-1', 'hand-port-2']);
  assert.deepEqual((await topo('delete', 'shop.yaml', undefined)).steps, [], 'nothing left to delete');
});

test('a file in its own project creates the project and its IPAM, and delete -f removes them; other files are not touched', async () => {
  await topo('apply', 'a.yaml', 'name: a\nnetworks:\n  - name: net\n    subnets: [10.1.0.0/24]\n');
  const b = await topo('apply', 'b.yaml', 'name: b\nproject: tenant-b\nnetworks:\n  - name: net\n    subnets: [10.1.0.0/24]\n');
  assert.deepEqual(changed(b.steps), ['create project default-domain:tenant-b', 'create network-ipam default-domain:tenant-b:default-network-ipam', 'create virtual-network default-domain:tenant-b:net']);
  const del = await topo('delete', 'b.yaml', undefined);
  assert.deepEqual(changed(del.steps), ['delete virtual-network default-domain:tenant-b:net', 'delete network-ipam default-domain:tenant-b:default-network-ipam', 'delete project default-domain:tenant-b']);
  assert.equal((await list('project')).some((p) => p['fq_name'].at(-1) === 'tenant-b'), false);
  assert.ok((await list('virtual-network')).some((n) => n['fq_name'].join(':') === 'default-domain:admin:net'), "topology a's network stays");
  await topo('delete', 'a.yaml', undefined);
});

test('refusals: objects made by hand or by another file, names that do not exist; nothing is changed', async () => {
  assert.equal((await cirrus('network', 'create', 'taken', '--subnet', '10.7.0.0/24')).code, 0);
  await topo('apply', 'owner.yaml', 'name: owner\nnetworks:\n  - name: theirs\n');
  const f = path.join(dir, 'thief.yaml');
  fs.writeFileSync(f, 'name: thief\nnetworks:\n  - name: fresh\n  - name: taken\n  - name: theirs\n');
  const r = await cirrus('apply', '-f', f);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /thief\.yaml:4: networks\[1\]: network taken exists and was made by hand/);
  assert.match(r.stderr, /thief\.yaml:5: networks\[2\]: network theirs exists and was made by topology owner/);
  assert.equal(await byName('virtual-network', 'fresh'), undefined);

  fs.writeFileSync(f, 'name: thief\nnetworks:\n  - name: fresh\n    policies: [nowhere]\n');
  const missing = await cirrus('apply', '-f', f);
  assert.match(missing.stderr, /thief\.yaml:4: networks\[0\]\.policies\[0\]: network-policy default-domain:admin:nowhere is neither declared in the file nor present in the API/);
  assert.equal(await byName('virtual-network', 'fresh'), undefined);
  await topo('delete', 'owner.yaml', undefined);
});

test('a failure midway stops with the object named; what was done stays, and a re-run completes', async () => {
  const text = 'name: mid\nnetworks:\n  - name: m1\n    subnets: [10.5.1.0/24]\n  - name: m2\n    subnets: [10.5.2.0/24]\npolicies:\n  - name: mp\n    rules: [pass any m1 <> m2]\n';
  await topo('apply', 'mid.yaml', text);
  // A port made by hand in m2 keeps it from being deleted.
  const port = await cirrus('-o', 'json', 'port', 'create', '--network', 'm2', '--name', 'blocker');
  assert.equal(port.code, 0, port.stderr);
  const f = path.join(dir, 'mid.yaml');
  const r = await cirrus('delete', '-f', f);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot delete network m2: Delete when resource still referred.*\(HTTP 409\)\nstopped after 1 of 3 changes/);
  assert.equal(await byName('virtual-network', 'm1'), undefined, 'm1 went before the failure');
  assert.ok(await byName('network-policy', 'mp'), 'the policy, after m2 in the order, is still there');
  assert.equal((await cirrus('port', 'delete', 'blocker')).code, 0);
  const rest = await topo('delete', 'mid.yaml', undefined);
  assert.deepEqual(changed(rest.steps), ['delete virtual-network default-domain:admin:m2', 'delete network-policy default-domain:admin:mp']);
});

test('the plan for people: signs, names in the project, the changed fields', async () => {
  const f = path.join(dir, 'people.yaml');
  fs.writeFileSync(f, 'name: people\nnetworks:\n  - name: p1\n    subnets: [10.6.0.0/24]\n    vni: 600\n');
  const first = await cirrus('apply', '-f', f);
  assert.match(first.stdout, /topology people \(.*people\.yaml\) on http:\/\/127\.0\.0\.1:\d+, project default-domain:admin:/);
  assert.match(first.stdout, /\+ network p1 +subnets \[10\.6\.0\.0\/24\]; vni 600/);
  assert.match(first.stdout, /created network p1/);
  fs.writeFileSync(f, 'name: people\nnetworks:\n  - name: p1\n    subnets: [10.6.0.0/24]\n    vni: 601\n    router_external: true\n');
  const dry = await cirrus('apply', '-f', f, '--dry-run');
  assert.match(dry.stdout, /~ network p1 +vni: 600 → 601; router_external: false → true/);
  assert.match(dry.stdout, /plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 2 unchanged\ndry run: nothing was changed/);
  const gone = await cirrus('delete', '-f', f);
  assert.match(gone.stdout, /- network p1\n/);
  assert.match(gone.stdout, /deleted: 1 change made/);
});
