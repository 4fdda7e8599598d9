// The agent's port API (Cirrus's POST /ports and TF's POST /port) and its introspect,
// against a real server and a real agent running in a host made of a network namespace.
// Workloads are namespaces too; every namespace of the run shares one prefix and is
// removed afterwards, pass or fail.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { run } from '../../src/agent/dataplane/kernel.js';
import { type AgentProcess, type ControlProcess, addNetns, ip, ipJson, pingOnce, pollUntil, removeNetns, startAgentIn, startControlIn, unixCall } from '../support/agent.js';
import { ADMIN, networkBody } from '../support/fixtures.js';
import { type RunningServer, call, startServer, tempDataDir } from '../support/server.js';
import { all, at, leaves, parseXml, textAt } from '../support/xml.js';

// Hosts are network namespaces: these tests need root (CI runs as root), and fail without it.
if (process.getuid?.() !== 0) throw new Error('test/agent needs root: hosts are network namespaces');
const P = `pa${process.pid}`;
const HOST = `${P}-h1`;
const [W1, W2, W3] = [`${P}-w1`, `${P}-w2`, `${P}-w3`];
const NET = [...ADMIN, 'red'].join(':');
const TF_VRF = `${NET}:red`;
const GW = '10.77.0.1';

let srv: RunningServer;
let dir: string;
let agent: AgentProcess | undefined;
let control: ControlProcess | undefined;
let vn: string;
let project: string;
let netId: number;
const table = () => 1_000_000 + netId;

const api = (method: string, p: string, body?: unknown) => call(srv.url, method, p, body);
const portApi = (method: string, p: string, body?: unknown) => unixCall(path.join(dir, 'h1.sock'), method, p, body);
const introspect = (p: string) => unixCall(path.join(dir, 'h1-introspect.sock'), 'GET', p);

async function runAgent(): Promise<AgentProcess> {
  const a = await startAgentIn(HOST, [
    'agent', '--host', 'h1', '--state', path.join(dir, 'h1'), '--control', control!.url, '--control-token-file', path.join(dir, 'control.token'),
    '--port-socket', path.join(dir, 'h1.sock'), '--introspect-socket', path.join(dir, 'h1-introspect.sock'), '--resync', '5',
  ]);
  await pollUntil('agent has the configuration', async () => ((await introspect('/healthz')).status === 200 ? true : undefined));
  return a;
}

interface Workload {
  vm: string;
  vmi: string;
  address: string;
  mac: string;
}

/** What a TF orchestrator makes in the config API for one interface (VM, VMI bound to h1, instance-ip). */
async function makeWorkload(name: string): Promise<Workload> {
  const ok = (r: Awaited<ReturnType<typeof api>>) => {
    assert.equal(r.status, 200, r.text);
    return r.body;
  };
  const vm = ok(await api('POST', '/virtual-machines', { 'virtual-machine': { fq_name: [`${P}-${name}`] } }))['virtual-machine'].uuid as string;
  const vmi = ok(
    await api('POST', '/virtual-machine-interfaces', {
      'virtual-machine-interface': {
        fq_name: [...ADMIN, `${name}-eth0`],
        parent_type: 'project',
        virtual_network_refs: [{ uuid: vn }],
        virtual_machine_refs: [{ uuid: vm }],
        virtual_machine_interface_bindings: { key_value_pair: [{ key: 'host_id', value: 'h1' }] },
      },
    }),
  )['virtual-machine-interface'].uuid as string;
  const iip = ok(await api('POST', '/instance-ips', { 'instance-ip': { virtual_network_refs: [{ uuid: vn }], virtual_machine_interface_refs: [{ uuid: vmi }] } }))['instance-ip'].uuid as string;
  const address = ok(await api('GET', `/instance-ip/${iip}`))['instance-ip'].instance_ip_address as string;
  const mac = ok(await api('GET', `/virtual-machine-interface/${vmi}`))['virtual-machine-interface'].virtual_machine_interface_mac_addresses.mac_address[0] as string;
  return { vm, vmi, address, mac };
}

/** vrouter-port-control's body for a namespace port. */
function tfBody(w: Workload, systemName: string, displayName: string) {
  return {
    id: w.vmi,
    'instance-id': w.vm,
    'vn-id': vn,
    'vm-project-id': project,
    'display-name': displayName,
    'ip-address': w.address,
    'ip6-address': '',
    'mac-address': w.mac,
    'system-name': systemName,
    type: 1,
    'rx-vlan-id': 65535,
    'tx-vlan-id': 65535,
    'vhostuser-mode': 0,
    author: 'port-api.test',
    time: '2026-01-01 00:00:00',
  };
}

/** The seed's manual workload side: MAC of the interface, the instance-ip, default route via the gateway. */
async function configureWorkload(netns: string, ifname: string, w: Workload): Promise<void> {
  await ip('-n', netns, 'link', 'set', ifname, 'address', w.mac);
  await ip('-n', netns, 'link', 'set', ifname, 'up');
  await ip('-n', netns, 'addr', 'add', `${w.address}/24`, 'dev', ifname);
  await ip('-n', netns, 'route', 'add', 'default', 'via', GW, 'dev', ifname);
}

const waitPing = (from: string, to: string) => pollUntil(`${from} pings ${to}`, async () => ((await pingOnce(from, to)) ? true : undefined), 15_000, 50);

interface KRoute {
  type?: string;
  dst: string;
  dev?: string;
}
const kernelRoutes = async () => {
  const r = await ip('-n', HOST, '-j', 'route', 'show', 'table', String(table())).catch(() => '[]');
  return JSON.parse(r.trim() || '[]') as KRoute[];
};
const routeTo = async (address: string) => (await kernelRoutes()).find((r) => r.dst === address);
/** The interface's entries in Cirrus's nftables mark maps (ip and arp): its network's mark. */
const marksFor = async (dev: string) => {
  const marks: number[] = [];
  for (const family of ['ip', 'arp']) {
    const r = await run('ip', ['netns', 'exec', HOST, 'nft', '-j', 'list', 'map', family, 'cirrus', 'port_marks']);
    const doc = JSON.parse(r.stdout || '{"nftables":[]}') as { nftables: { map?: { elem?: [string, number][] } }[] };
    for (const [name, mark] of doc.nftables.find((o) => o.map)?.map?.elem ?? []) if (name === dev) marks.push(mark);
  }
  return marks;
};
const neighsOn = async (dev: string) => (await ipJson<{ dev: string }>(HOST, 'neigh', 'show', 'proto', '77')).filter((n) => n.dev === dev);
const linkExists = async (netns: string, dev: string) => (await ipJson(netns, 'link', 'show')).some((l) => l['ifname'] === dev);

async function itf(query: string) {
  const r = await introspect(`/Snh_ItfReq?${query}`);
  assert.equal(r.status, 200);
  return all(parseXml(r.text), 'ItfSandeshData');
}

// Ports of the tests below: A adopted (the seed's manual steps), B made by the agent, C adopted late.
let A: Workload;
let B: Workload;
let C: Workload;
const bodyA = () => tfBody(A, 'veth1', 'web-a');

before(async () => {
  dir = tempDataDir();
  srv = await startServer(dir, ['--socket', path.join(dir, 'api.sock')]);
  for (const ns of [HOST, W1, W2, W3]) await addNetns(ns);
  const net = await api('POST', '/virtual-networks', networkBody('red', '10.77.0.0/24'));
  assert.equal(net.status, 200, net.text);
  vn = net.body['virtual-network'].uuid;
  netId = (await api('GET', `/virtual-network/${vn}`)).body['virtual-network'].virtual_network_network_id;
  project = (await api('POST', '/fqname-to-id', { type: 'project', fq_name: ADMIN })).body.uuid;
  // The host's control node runs beside its agent (one host: no overlay here).
  control = await startControlIn(HOST, `unix:${path.join(dir, 'api.sock')}`, ['--listen', '127.0.0.1:0', '--token-file', path.join(dir, 'control.token'), '--name', 'c1']);
  agent = await runAgent();
});

after(async () => {
  await agent?.stop().catch(() => undefined);
  await control?.stop().catch(() => undefined);
  await removeNetns(`${P}-`);
  await srv?.cleanup();
});

test('bad bodies are refused with 400 naming the field, and register nothing', async () => {
  const before = (await portApi('GET', '/ports')).body;
  const uuid = '0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
  const cases: [string, string, unknown, string | undefined][] = [
    ['POST', '/port', '{"id": ', undefined],
    ['POST', '/port', { 'system-name': 'veth9' }, 'id'],
    ['POST', '/port', { id: 'not-a-uuid', 'system-name': 'veth9' }, 'id'],
    ['POST', '/port', { id: uuid }, 'system-name'],
    ['POST', '/port', { id: uuid, 'system-name': 'a/b' }, 'system-name'],
    ['POST', '/port', { id: uuid, 'system-name': 'x'.repeat(20) }, 'system-name'],
    ['POST', '/port', { id: uuid, 'system-name': 'veth9', type: 7 }, 'type'],
    ['POST', '/port', { id: uuid, 'system-name': 'veth9', 'rx-vlan-id': 'ten' }, 'rx-vlan-id'],
    ['POST', '/ports', 'not json', undefined],
    ['POST', '/ports', { vmi_uuid: uuid, netns: W2, colour: 'red' }, 'colour'],
    ['POST', '/ports', { vmi_uuid: uuid }, 'netns'],
    ['POST', '/ports', { vmi_uuid: 'nope', netns: W2 }, 'vmi_uuid'],
    ['POST', '/ports', { vmi_uuid: uuid, netns: W2, ifname: 'a/b' }, 'ifname'],
    ['POST', '/ports', { vmi_uuid: uuid, netns: '../etc' }, 'netns'],
  ];
  for (const [method, p, body, field] of cases) {
    const r = await portApi(method, p, body);
    const what = `${method} ${p} ${JSON.stringify(body)}`;
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    if (field) {
      assert.equal(r.body.error.field, field, what);
      assert.ok(r.body.error.message.includes(field), `${what}: ${r.body.error.message}`);
    } else assert.match(r.body.error.message, /not valid JSON/, what);
  }
  assert.deepEqual((await portApi('GET', '/ports')).body, before);
  assert.equal((await portApi('GET', `/port/${uuid}`)).status, 404);
});

test("TF's POST /port adopts the caller's veth (the seed's manual steps); a POST /ports workload pings it", async () => {
  A = await makeWorkload('a');
  // The caller makes the pair in the host and moves one end into the workload.
  await ip('-n', HOST, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  await ip('-n', HOST, 'link', 'set', 'veth0', 'netns', W1);
  const added = await portApi('POST', '/port', bodyA());
  assert.equal(added.status, 200, added.text);
  assert.deepEqual(added.body, {});
  await configureWorkload(W1, 'veth0', A);
  await ip('-n', HOST, 'link', 'set', 'veth1', 'up');

  B = await makeWorkload('b');
  const made = await portApi('POST', '/ports', { vmi_uuid: B.vmi, netns: W2 });
  assert.equal(made.status, 200, made.text);
  assert.equal(made.body.status, 'active');
  assert.equal(made.body.address, B.address);
  assert.equal(made.body.gateway, GW);

  await waitPing(W2, A.address);
  await waitPing(W1, B.address);

  assert.deepEqual((await portApi('GET', `/port/${A.vmi}`)).body, bodyA());
  const { body: list } = await portApi('GET', '/ports');
  assert.equal(list.host, 'h1');
  const a = list.ports.find((p: { vmi_uuid: string }) => p.vmi_uuid === A.vmi);
  assert.deepEqual([a.mode, a.status, a.host_ifname, a.address, a.mac], ['adopt', 'active', 'veth1', A.address, A.mac]);
  assert.equal(list.ports.find((p: { vmi_uuid: string }) => p.vmi_uuid === B.vmi).mode, 'create');
});

test('introspect: /vrfs, /routes and the Sandesh requests of TF tools', async () => {
  const vrfs = (await introspect('/vrfs')).body.vrfs;
  assert.deepEqual(vrfs, [{ name: NET, uuid: vn, table: table(), network_id: netId, interfaces: 2, tf_name: TF_VRF }]);

  const routes = await introspect(`/routes?vrf=${NET}`);
  assert.equal(routes.status, 200);
  assert.equal(routes.body.table, table());
  const byDst = new Map((routes.body.routes as KRoute[]).map((r) => [r.dst, r]));
  assert.equal(byDst.get(A.address)?.dev, 'veth1');
  assert.match(byDst.get(B.address)?.dev ?? '', /^cv-/);
  assert.equal(byDst.get('default')?.type, 'unreachable');
  assert.equal(byDst.get(GW)?.type, 'local');
  assert.equal((await introspect(`/routes?vrf=${vn}`)).body.table, table());
  assert.equal((await introspect(`/routes?vrf=${encodeURIComponent(TF_VRF)}`)).status, 200);
  assert.equal((await introspect('/routes?vrf=default-domain:admin:nope')).status, 404);
  const missing = await introspect('/routes');
  assert.equal(missing.status, 400);
  assert.equal(missing.body.error.field, 'vrf');

  const interfaces = (await introspect('/interfaces')).body.interfaces;
  assert.equal(interfaces.length, 2);

  // Snh_ItfReq: every registered port; filters by name and uuid.
  const doc = await introspect('/Snh_ItfReq?name=&uuid=');
  assert.match(doc.text, /^<ItfResp type="sandesh"><itf_list type="list"><list type="struct" size="2"><ItfSandeshData>/);
  for (const leaf of leaves(parseXml(doc.text))) if (leaf.name !== 'element') assert.ok(leaf.attrs['type'], `<${leaf.name}> has a type`);
  const [a] = await itf('name=veth1&uuid=');
  assert.ok(a);
  assert.deepEqual(
    ['name', 'uuid', 'vrf_name', 'active', 'mac_addr', 'ip_addr', 'vm_uuid', 'vm_name', 'vn_name', 'vm_project_uuid'].map((f) => textAt(a, f)),
    ['veth1', A.vmi, TF_VRF, 'Active', A.mac, A.address, A.vm, `${P}-a`, NET, project],
  );
  assert.equal(at(a, 'index').attrs['type'], 'i32');
  const [b, ...rest] = await itf(`name=&uuid=${B.vmi}`);
  assert.equal(rest.length, 0);
  assert.match(textAt(b!, 'name'), /^cv-/);
  assert.equal((await itf('name=nothing-like-this')).length, 0);

  // Snh_VrfListReq: ucindex is the index Snh_Inet4UcRouteReq takes.
  const vrfDoc = parseXml((await introspect('/Snh_VrfListReq?name=red')).text);
  assert.equal(vrfDoc.name, 'VrfListResp');
  const [vrf] = all(vrfDoc, 'VrfSandeshData');
  assert.equal(textAt(vrf!, 'name'), TF_VRF);
  const ucindex = textAt(vrf!, 'ucindex');
  assert.equal(ucindex, String(netId));
  assert.equal(all(parseXml((await introspect('/Snh_VrfListReq?name=blue')).text), 'VrfSandeshData').length, 0);

  // Snh_Inet4UcRouteReq: the whole table, then one prefix.
  const full = all(parseXml((await introspect(`/Snh_Inet4UcRouteReq?vrf_index=${ucindex}&src_ip=&prefix_len=`)).text), 'RouteUcSandeshData');
  assert.deepEqual(full.map((r) => `${textAt(r, 'src_ip')}/${textAt(r, 'src_plen')}`).sort(), ['0.0.0.0/0', `${A.address}/32`, `${B.address}/32`, `${GW}/32`, '10.77.0.2/32'].sort());
  const one = all(parseXml((await introspect(`/Snh_Inet4UcRouteReq?vrf_index=${ucindex}&src_ip=${A.address}&prefix_len=32`)).text), 'RouteUcSandeshData');
  assert.equal(one.length, 1);
  assert.equal(textAt(one[0]!, 'src_ip'), A.address);
  assert.equal(textAt(one[0]!, 'src_plen'), '32');
  assert.equal(textAt(one[0]!, 'src_vrf'), TF_VRF);
  const nh = at(one[0]!, 'path_list/list/PathSandeshData/nh/NhSandeshData');
  assert.deepEqual([textAt(nh, 'type'), textAt(nh, 'itf'), textAt(nh, 'mac')], ['interface', 'veth1', A.mac]);
  const gw = all(parseXml((await introspect(`/Snh_Inet4UcRouteReq?vrf_index=${ucindex}&src_ip=${GW}`)).text), 'NhSandeshData');
  assert.equal(textAt(gw[0]!, 'type'), 'receive');
  assert.equal(parseXml((await introspect('/Snh_Inet4UcRouteReq?vrf_index=4242')).text).name, 'ErrorResp');
  assert.equal(parseXml((await introspect(`/Snh_Inet4UcRouteReq?vrf_index=${ucindex}&src_ip=10.77.0`)).text).name, 'ErrorResp');
});

test('a port whose interface appears later becomes active when it does', async () => {
  C = await makeWorkload('c');
  const r = await portApi('POST', '/port', tfBody(C, 'veth3', 'web-c'));
  assert.equal(r.status, 200, r.text);
  assert.equal(textAt((await itf(`uuid=${C.vmi}`))[0]!, 'active'), 'Inactive');
  assert.equal(await routeTo(C.address), undefined);

  await ip('-n', HOST, 'link', 'add', 'veth3', 'type', 'veth', 'peer', 'name', 'veth2', 'netns', W3);
  await pollUntil('port C active with its host route', async () => {
    const [c] = await itf(`uuid=${C.vmi}`);
    return c && textAt(c, 'active') === 'Active' && (await routeTo(C.address))?.dev === 'veth3' ? true : undefined;
  });
  await configureWorkload(W3, 'veth2', C);
  await waitPing(W3, A.address);
});

test(
  'PUT /disable-port removes the routes and /enable-port restores them',
  async () => {
    assert.deepEqual((await portApi('PUT', `/disable-port/${C.vmi}`)).body, {});
    assert.equal(await routeTo(C.address), undefined);
    assert.deepEqual(await marksFor('veth3'), []);
    const [c] = await itf(`uuid=${C.vmi}`);
    assert.deepEqual([textAt(c!, 'active'), textAt(c!, 'admin_state')], ['Inactive', 'Disabled']);
    assert.ok(await linkExists(HOST, 'veth3'), 'the caller\'s interface stays while the port is disabled');

    assert.deepEqual((await portApi('PUT', `/enable-port/${C.vmi}`)).body, {});
    await pollUntil('port C routed again', async () => ((await routeTo(C.address))?.dev === 'veth3' ? true : undefined));
    assert.deepEqual(await marksFor('veth3'), [table(), table()]);
    await waitPing(W3, A.address);
  },
);

test('kill -9 and restart: registrations persist, forwarding never stops, nothing is re-plumbed', async () => {
  await agent!.stop(true);
  // The kernel keeps forwarding without the agent.
  await waitPing(W2, A.address);
  agent = await runAgent();
  assert.deepEqual((await portApi('GET', `/port/${A.vmi}`)).body, bodyA());
  await pollUntil('ports A and B active after the restart', async () => {
    const ports = (await portApi('GET', '/ports')).body.ports as { vmi_uuid: string; status: string }[];
    return [A.vmi, B.vmi].every((u) => ports.find((p) => p.vmi_uuid === u)?.status === 'active') ? true : undefined;
  });
  const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const metrics = (await introspect('/metrics')).text;
  assert.ok(metric(metrics, 'cirrus_agent_reconciles_total') >= 1);
  assert.equal(metric(metrics, 'cirrus_agent_kernel_changes_total'), 0, 'a restart changes nothing in the kernel');
  await waitPing(W2, A.address);
  await waitPing(W1, B.address);
});

test("DELETE /port removes routes, rules and neighbours but not the caller's interface", async () => {
  assert.ok((await marksFor('veth1')).length === 2 && (await neighsOn('veth1')).length === 1);
  const r = await portApi('DELETE', `/port/${A.vmi}`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body, {});
  assert.equal(await routeTo(A.address), undefined);
  assert.deepEqual(await marksFor('veth1'), []);
  assert.deepEqual(await neighsOn('veth1'), []);
  assert.ok(await linkExists(HOST, 'veth1'), "the caller's veth1 stays");
  assert.ok(await linkExists(W1, 'veth0'));
  assert.equal((await portApi('GET', `/port/${A.vmi}`)).status, 404);
  assert.equal((await portApi('DELETE', `/port/${A.vmi}`)).status, 404);
  assert.equal(await pingOnce(W2, A.address), false);
  assert.equal((await itf(`uuid=${A.vmi}`)).length, 0);

  // Cirrus's DELETE /ports removes the pair the agent made.
  const host = (await portApi('GET', `/ports/${B.vmi}`)).body.host_ifname as string;
  assert.equal((await portApi('DELETE', `/ports/${B.vmi}`)).status, 200);
  assert.equal(await linkExists(HOST, host), false);
  assert.equal(await linkExists(W2, 'eth0'), false);
});
