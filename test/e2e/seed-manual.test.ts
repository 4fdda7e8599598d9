// The seed's manual steps (seed 000), on a lab host exactly as on a real one: API objects
// through the config API (vnc_api-shaped requests), then inside host h1 (`lab exec h1`):
// a veth pair, one end into namespace service-N, the port added through the agent's TF
// port API on 127.0.0.1:9091 with system-name veth1, the MAC set, veth1 up, `dhclient veth0`
// (the agent's DHCP service gives the address; dhclient runs with the namespace's own
// resolv.conf and Cirrus's script, its files in a temporary directory), and a server in the
// namespace reached from another workload of the network.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { pollUntil } from '../../src/util/poll.js';
import { ADMIN, networkBody } from '../support/fixtures.js';
import { CIRRUS, call, freePort } from '../support/server.js';

if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

const LAB = `s${process.pid}`;
const NS = `${LAB}svc1`;
const CLIENT = `${LAB}cli1`;
const run = promisify(execFile);
let api = '';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-seed-'));
const LIB = path.resolve(import.meta.dirname, '../../../lib');

const cirrus = (...args: string[]) => run(process.execPath, [CIRRUS, ...args], { timeout: 120_000, env: { ...process.env, CIRRUS_API: api } });
/** A command in host h1's namespace, as `lab exec h1 -- CMD` runs it. */
const onHost = (...cmd: string[]) => cirrus('lab', 'exec', 'h1', '--name', LAB, '--', ...cmd);

before(async () => {
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  await cirrus('lab', 'up', '--hosts', '1', '--name', LAB, '--api-port', String(port));
});

after(async () => {
  // dhclient went to the background once bound: its pid file names it.
  const pid = Number(fs.existsSync(path.join(tmp, 'pid')) ? fs.readFileSync(path.join(tmp, 'pid'), 'utf8') : 0);
  if (pid > 0) process.kill(pid, 'SIGKILL');
  await cirrus('lab', 'down', '--name', LAB).catch(() => undefined);
  await run('ip', ['netns', 'del', NS]).catch(() => undefined);
  fs.rmSync(`/etc/netns/${NS}`, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("the seed's manual steps: veth pair, TF port API add with system-name veth1, dhclient veth0; a server there is reachable", async () => {
  const vn = (await call(api, 'POST', '/virtual-networks', networkBody('seed-red', '10.66.0.0/24'))).body['virtual-network'].uuid as string;
  const vm = (await call(api, 'POST', '/virtual-machines', { 'virtual-machine': { uuid: null, fq_name: [NS] } })).body['virtual-machine'].uuid as string;
  const vmiRes = await call(api, 'POST', '/virtual-machine-interfaces', {
    'virtual-machine-interface': { uuid: null, fq_name: [NS, 'veth0'], parent_type: 'virtual-machine', virtual_network_refs: [{ to: [...ADMIN, 'seed-red'], uuid: vn }] },
  });
  assert.equal(vmiRes.status, 200, vmiRes.text);
  const vmi = vmiRes.body['virtual-machine-interface'].uuid as string;
  await call(api, 'POST', '/instance-ips', { 'instance-ip': { uuid: null, fq_name: [`${NS}.veth0`], virtual_network_refs: [{ uuid: vn }], virtual_machine_interface_refs: [{ uuid: vmi }] } });
  const read = (await call(api, 'GET', `/virtual-machine-interface/${vmi}?fields=instance_ip_back_refs`)).body['virtual-machine-interface'];
  const mac = read.virtual_machine_interface_mac_addresses.mac_address[0] as string;
  const iip = (await call(api, 'GET', `/instance-ip/${read.instance_ip_back_refs[0].uuid}`)).body['instance-ip'];
  const address = iip.instance_ip_address as string;

  // On the host, as the seed writes them. `ip netns add` runs outside `lab exec`: under
  // `ip netns exec` the new namespace's bind mount would stay in a private mount namespace.
  await run('ip', ['netns', 'add', NS]);
  await onHost('ip', 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  await onHost('ip', 'link', 'set', 'veth0', 'netns', NS);
  const body = JSON.stringify({
    id: vmi, 'instance-id': vm, 'vn-id': vn, 'vm-project-id': '', 'display-name': NS, 'ip-address': address, 'ip6-address': '',
    'mac-address': mac, 'system-name': 'veth1', type: 1, 'rx-vlan-id': -1, 'tx-vlan-id': -1, 'vhostuser-mode': 0,
  });
  const added = await onHost('curl', '-s', '-X', 'POST', '-H', 'content-type: application/json', '-d', body, 'http://127.0.0.1:9091/port');
  assert.equal(added.stdout.trim(), '{}');
  await onHost('ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'veth0', 'address', mac);
  await onHost('ip', 'link', 'set', 'veth1', 'up');
  await onHost('ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'veth0', 'up');
  // The seed: `ip netns exec service-1 dhclient veth0`; -1: one attempt, then to the background once bound.
  fs.mkdirSync(`/etc/netns/${NS}`, { recursive: true });
  fs.writeFileSync(`/etc/netns/${NS}/resolv.conf`, '');
  await run('ip', ['netns', 'exec', NS, 'dhclient', '-1', '-sf', path.join(LIB, 'dhclient-script'), '-pf', path.join(tmp, 'pid'), '-lf', path.join(tmp, 'leases'), 'veth0'], { timeout: 30_000 });
  await pollUntil("dhclient's pid file", () => fs.existsSync(path.join(tmp, 'pid')) || undefined, { timeoutMs: 5_000, intervalMs: 10 }); // written by the daemon just after -1 returned
  assert.match((await run('ip', ['-n', NS, '-4', 'addr', 'show', 'veth0'])).stdout, new RegExp(`inet ${address.replace(/\./g, '\\.')}/24`));
  assert.match((await run('ip', ['-n', NS, 'route'])).stdout, /default via 10\.66\.0\.1 dev veth0/);
  // The seed checks the interface in the agent's introspect.
  const itf = await onHost('curl', '-s', 'http://127.0.0.1:8085/Snh_ItfReq?name=veth1');
  assert.match(itf.stdout, /<name type="string">veth1<\/name>/);

  // A server in the namespace, reached from another workload of the network.
  const server = execFile('ip', ['netns', 'exec', NS, 'python3', '-c', 'import http.server as h; h.HTTPServer(("0.0.0.0", 8080), h.SimpleHTTPRequestHandler).serve_forever()'], { cwd: '/tmp' });
  try {
    await cirrus('lab', 'workload', 'add', CLIENT, '--host', 'h1', '--network', 'seed-red', '--name', LAB);
    await pollUntil('HTTP from the client to service', async () => {
      const r = await cirrus('lab', 'exec', CLIENT, '--name', LAB, '--', 'curl', '-s', '-m', '1', '-o', '/dev/null', '-w', '%{http_code}', `http://${address}:8080/`).catch(() => undefined);
      return r?.stdout === '200' ? true : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
  } finally {
    server.kill();
  }
});
