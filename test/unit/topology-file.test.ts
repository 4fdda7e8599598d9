// Topology files: the schema and the checks of desired.ts, table-driven. Every error names
// the file, the line and the path of the offending entry; the examples are valid.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { desiredState } from '../../src/topology/desired.js';
import { TopologyError, parseTopology } from '../../src/topology/load.js';
import type { DesiredObject } from '../../src/topology/model.js';
import { REPO } from '../support/server.js';

const load = (text: string) => desiredState(parseTopology(text, 't.yaml'), 'admin');

test('invalid files are refused with file:line: path: reason', () => {
  const cases: [string, string, RegExp][] = [
    ['empty file', '', /^t\.yaml: the file is empty/],
    ['YAML syntax', 'networks:\n  - name: a\n   subnets: []\n', /^t\.yaml:3: /],
    ['duplicate key', 'name: a\nname: b\n', /^t\.yaml:2: Map keys must be unique/],
    ['not a mapping', '- a\n', /^t\.yaml:1: \(top\): \["a"\] is not a topology/],
    ['unknown top-level field', 'name: t\nnetwork: []\n', /^t\.yaml:2: network: unknown field in a topology \(known: name, project, networks/],
    ['unknown field in a network', 'networks:\n  - name: a\n    subnet: [10.0.0.0/24]\n', /^t\.yaml:3: networks\[0\]\.subnet: unknown field in a network/],
    ['missing name', 'networks:\n  - subnets: []\n', /^t\.yaml:2: networks\[0\]: a network needs 'name'/],
    ['list expected', 'networks:\n  name: a\n', /^t\.yaml:1: networks: \{"name":"a"\} is not a list/],
    ['bad name', 'networks:\n  - name: "a b"\n', /^t\.yaml:2: networks\[0\]\.name: "a b" is not network name: letters, digits/],
    ['vni out of range', 'networks:\n  - name: a\n    vni: 9000000\n', /^t\.yaml:3: networks\[0\]\.vni: 9000000 must be <= 8388607/],
    ['subnet neither string nor object', 'networks:\n  - name: a\n    subnets: [7]\n', /^t\.yaml:3: networks\[0\]\.subnets\[0\]: 7 is not a CIDR string or \{cidr, gateway, dns\}/],
    ['boolean expected', 'networks:\n  - name: a\n    router_external: yes please\n', /networks\[0\]\.router_external: "yes please" is not public network/],
    ['bad CIDR', 'networks:\n  - name: a\n    subnets:\n      - 10.0.0.0/33\n', /^t\.yaml:4: networks\[0\]\.subnets\[0\]: prefix length '33'/],
    ['host bits in CIDR', 'networks:\n  - name: a\n    subnets: [10.0.0.1/24]\n', /^t\.yaml:3: networks\[0\]\.subnets\[0\]: 10\.0\.0\.1\/24 has host bits set/],
    [
      'gateway outside its subnet',
      'networks:\n  - name: a\n    subnets:\n      - cidr: 10.0.0.0/24\n        gateway: 10.0.1.1\n',
      /^t\.yaml:5: networks\[0\]\.subnets\[0\]\.gateway: '10\.0\.1\.1' is not an address of 10\.0\.0\.0\/24/,
    ],
    ['repeated subnet', 'networks:\n  - name: a\n    subnets: [10.0.0.0/24, 10.0.0.0/24]\n', /networks\[0\]\.subnets\[1\]: '10\.0\.0\.0\/24' is listed twice/],
    ['network declared twice', 'networks:\n  - name: a\n  - name: a\n', /^t\.yaml:3: networks\[1\]\.name: 'a' is declared twice/],
    ['bad policy rule', 'policies:\n  - name: p\n    rules:\n      - pass tcp a > b\n      - allow tcp a > b\n', /^t\.yaml:5: policies\[0\]\.rules\[1\]: rule 'allow tcp a > b': action 'allow'/],
    ['policy without rules', 'policies:\n  - name: p\n    rules: []\n', /policies\[0\]\.rules: needs at least 1 item/],
    ['bad security group rule', 'security_groups:\n  - name: g\n    rules: [inbound tcp any 22]\n', /^t\.yaml:3: security_groups\[0\]\.rules\[0\]: rule 'inbound tcp any 22': direction 'inbound'/],
    ['policy named twice on a network', 'networks:\n  - name: a\n    policies: [p, p]\n', /networks\[0\]\.policies\[1\]: 'default-domain:admin:p' is listed twice/],
    ['bad reference', 'networks:\n  - name: a\n    policies: ["x:y"]\n', /networks\[0\]\.policies\[0\]: 'x:y' is not NAME or DOMAIN:PROJECT:NAME/],
    [
      'workload address outside its network',
      'networks:\n  - name: red\n    subnets: [10.0.0.0/24]\nworkloads:\n  - name: w\n    host: h1\n    network: red\n    address: 10.0.1.5\n',
      /^t\.yaml:8: workloads\[0\]\.address: 10\.0\.1\.5 is in no subnet of network red/,
    ],
    ['command as a shell string', 'workloads:\n  - name: w\n    host: h1\n    network: red\n    command: python3 -m http.server\n', /^t\.yaml:5: workloads\[0\]\.command: "python3 -m http.server" is not a list: a program and its arguments \(no shell\)/],
    ['floating IP without ports', 'floating_ips:\n  - name: f\n    network: public\n    ports: []\n', /floating_ips\[0\]\.ports: needs at least 1 item/],
    ['floating IP port twice', 'floating_ips:\n  - name: f\n    network: public\n    ports: [a, a]\n', /floating_ips\[0\]\.ports\[1\]: .* is listed twice/],
    ['floating IP address', 'floating_ips:\n  - name: f\n    network: public\n    address: 1.2.3\n    ports: [a]\n', /^t\.yaml:4: floating_ips\[0\]\.address: '1\.2\.3' is not an IPv4 address/],
    ['bad project', 'project: a:b:c\n', /^t\.yaml:1: project: "a:b:c" is not PROJECT or DOMAIN:PROJECT/],
  ];
  for (const [what, text, expected] of cases) {
    assert.throws(() => load(text), (e: unknown) => e instanceof TopologyError && expected.test(e.message), what);
  }
});

test('the topology name comes from name:, else from the file name, which must then be one', () => {
  assert.equal(parseTopology('name: lab-1\n', 'x.yaml').name, 'lab-1');
  assert.equal(parseTopology('networks: []\n', '/a/b/web.tier.yml').name, 'web.tier');
  assert.throws(() => parseTopology('networks: []\n', 'My File.yaml'), /the file name 'My File' is not a topology name: give one with 'name:'/);
});

const find = (objects: DesiredObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.fq.at(-1) === name)!;

test('desired state: specs and bodies, references to the file and outside it', () => {
  const d = load(`
project: dom:proj
networks:
  - name: red
    subnets: [192.168.10.0/24, {cidr: 10.1.0.0/16, gateway: 10.1.255.254}]
    vni: 10
    policies: [p1, other:proj:p2]
    snat: true
policies:
  - name: p1
    rules: [pass tcp red > green 80]
workloads:
  - name: w1
    host: h1
    network: red
    security_groups: [web, default]
security_groups:
  - name: web
    rules: [ingress tcp any 80]
floating_ips:
  - name: vip
    network: public
    ports: [w1, hand-made-port]
`);
  assert.deepEqual(d.project, ['dom', 'proj']);
  assert.deepEqual(
    d.objects.map((o) => `${o.kind} ${o.fq.join(':')}`),
    [
      'project dom:proj',
      'network-ipam dom:proj:default-network-ipam',
      'network-policy dom:proj:p1',
      'security-group dom:proj:web',
      'virtual-network dom:proj:red',
      'workload w1',
      'floating-ip-pool dom:proj:public:floating-ip-pool',
      'floating-ip dom:proj:public:floating-ip-pool:vip',
    ],
  );
  const red = find(d.objects, 'virtual-network', 'red');
  assert.deepEqual(red.spec, {
    subnets: [
      { cidr: '192.168.10.0/24', gateway: undefined, dns: undefined },
      { cidr: '10.1.0.0/16', gateway: '10.1.255.254', dns: undefined },
    ],
    vni: 10,
    router_external: false,
    is_shared: false,
    snat: true,
    policies: ['dom:proj:p1', 'other:proj:p2'],
  });
  assert.equal(red.body['cirrus_snat'], true);
  assert.deepEqual(red.body['network_policy_refs'], [
    { to: ['dom', 'proj', 'p1'], attr: { sequence: { major: 0, minor: 0 } } },
    { to: ['other', 'proj', 'p2'], attr: { sequence: { major: 1, minor: 0 } } },
  ]);
  assert.deepEqual(find(d.objects, 'network-policy', 'p1').spec, { rules: ['pass tcp dom:proj:red > dom:proj:green 80'] });
  assert.deepEqual(find(d.objects, 'workload', 'w1').spec['security_groups'], ['dom:proj:default', 'dom:proj:web']);
  assert.deepEqual(find(d.objects, 'floating-ip', 'vip').spec, { address: undefined, ports: ['dom:proj:hand-made-port', 'dom:proj:w1-eth0'] });
  // What the file names without declaring it must exist in the API (checked before the plan runs).
  assert.deepEqual(
    d.external.map((r) => `${r.type} ${r.fq.join(':')} @ ${r.at.join('.')}`),
    [
      'network-policy other:proj:p2 @ networks.0.policies.1',
      'security-group dom:proj:default @ workloads.0.security_groups.1',
      'virtual-network dom:proj:public @ floating_ips.0.network',
      'virtual-machine-interface dom:proj:hand-made-port @ floating_ips.0.ports.1',
    ],
  );
});

test('fields a file leaves out are unmanaged where the server chooses, defaults where it does not', () => {
  const red = find(load('networks:\n  - name: red\n').objects, 'virtual-network', 'red');
  assert.deepEqual(red.spec, { subnets: [], vni: undefined, router_external: false, is_shared: false, snat: undefined, policies: [] });
  assert.equal('cirrus_snat' in red.body, false, 'servers without the snat property still take the network');
  assert.equal('virtual_network_properties' in red.body, false);
});

test('the examples are valid topology files', () => {
  const dir = path.join(REPO, 'examples');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.includes('demo.yaml'));
  for (const f of files) {
    const d = desiredState(parseTopology(fs.readFileSync(path.join(dir, f), 'utf8'), f), 'admin');
    assert.ok(d.objects.some((o) => o.kind === 'workload'), `${f} has workloads`);
  }
});
