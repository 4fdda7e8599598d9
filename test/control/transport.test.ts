// The agent ↔ control node transport, against a real API server and real control node
// processes (no data plane: the agent side is the ControlClient alone): the token is
// required, TLS and mutual TLS work, and an agent's two sessions give failover, headless
// operation and a consistent resync.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { ControlClient } from '../../src/agent/control-client.js';
import { PROTOCOL_PATH, type RouteEntry } from '../../src/control/protocol.js';
import { pollUntil } from '../../src/util/poll.js';
import { networkBody } from '../support/fixtures.js';
import { CIRRUS, type RunningServer, call, freePort, startServer, tempDataDir } from '../support/server.js';

const run = promisify(execFile);
let srv: RunningServer;
let dir: string;
const nodes: ChildProcess[] = [];
const clients: ControlClient[] = [];

interface Node {
  proc: ChildProcess;
  url: string;
}

/** Starts `cirrus control` on a free port (extra args: TLS); resolves once it is listening. */
async function startNode(name: string, args: string[] = [], port?: number): Promise<Node> {
  const p = port ?? (await freePort());
  const proc = spawn(process.execPath, [CIRRUS, '--api', srv.url, 'control', '--name', name, '--listen', `127.0.0.1:${p}`, '--token-file', path.join(dir, 'token'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  nodes.push(proc);
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /agents on (wss?:\/\/\S+),/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', (code) => reject(new Error(`control node exited with ${code}: ${out}`)));
  });
  return { proc, url };
}

const kill9 = (n: Node) => new Promise<void>((resolve) => {
  n.proc.once('exit', () => resolve());
  n.proc.kill('SIGKILL');
});

/** One connection attempt with the right token: 'open', or why it failed. */
function attempt(url: string, tls: { ca?: Buffer }): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(new URL(PROTOCOL_PATH, url), { headers: { authorization: `Bearer ${fs.readFileSync(path.join(dir, 'token'), 'utf8').trim()}` }, ...tls });
    ws.on('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`));
    ws.on('error', (e) => resolve(e.message || 'error'));
  });
}

function client(urls: string[], extra: Partial<ConstructorParameters<typeof ControlClient>[0]> = {}): ControlClient {
  const c = new ControlClient({ urls, host: 'h1', underlayIp: '10.254.0.1', token: fs.readFileSync(path.join(dir, 'token'), 'utf8').trim(), ...extra });
  clients.push(c);
  c.start();
  return c;
}

/** The address routes of network `net` in the client's document (sorted). */
const routes = (c: ControlClient, net: string) =>
  [...(c.doc ?? new Map()).entries()].filter(([k]) => k.startsWith(`r/${net}/`)).map(([, v]) => (v as RouteEntry).address).sort();

let net = '';
/** A port bound to `host` (VMI + instance-ip); returns its address. */
async function port(host: string): Promise<string> {
  const vmi = await call(srv.url, 'POST', '/virtual-machine-interfaces', {
    'virtual-machine-interface': {
      fq_name: ['default-domain', 'admin', `p-${Math.random().toString(36).slice(2)}`],
      parent_type: 'project',
      virtual_network_refs: [{ uuid: net }],
      virtual_machine_interface_bindings: { key_value_pair: [{ key: 'host_id', value: host }] },
    },
  });
  assert.equal(vmi.status, 200, vmi.text);
  const iip = await call(srv.url, 'POST', '/instance-ips', {
    'instance-ip': { virtual_network_refs: [{ uuid: net }], virtual_machine_interface_refs: [{ uuid: vmi.body['virtual-machine-interface'].uuid }] },
  });
  assert.equal(iip.status, 200, iip.text);
  return (await call(srv.url, 'GET', `/instance-ip/${iip.body['instance-ip'].uuid}`)).body['instance-ip'].instance_ip_address as string;
}

before(async () => {
  dir = tempDataDir();
  srv = await startServer(dir);
  net = (await call(srv.url, 'POST', '/virtual-networks', networkBody('t', '10.5.0.0/24'))).body['virtual-network'].uuid;
  // h2 has a tunnel endpoint; h1 (the client) must have a port in the network to see it.
  await call(srv.url, 'POST', '/virtual-routers', { 'virtual-router': { fq_name: ['default-global-system-config', 'h2'], parent_type: 'global-system-config', virtual_router_ip_address: '10.254.0.2' } });
  await port('h1');
});

after(async () => {
  for (const c of clients) c.stop();
  for (const n of nodes) n.kill('SIGKILL');
  await srv?.cleanup();
});

test('a session without the token, or with a wrong one, is refused with 401', async () => {
  const node = await startNode('auth');
  for (const headers of [{}, { authorization: 'Bearer wrong' }]) {
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(new URL(PROTOCOL_PATH, node.url), { headers });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    assert.equal(status, 401);
  }
  const metrics = await call(node.url.replace('ws:', 'http:'), 'GET', '/metrics');
  assert.match(metrics.text, /cirrus_control_rejected_total\{reason="missing or wrong control token"\} 2/);
  await kill9(node);
});

test('an agent gets its document, then deltas; a route appears in < 1 s; its virtual-router is recorded', async () => {
  const node = await startNode('c1');
  const c = client([node.url]);
  await pollUntil('sync', () => (c.synced ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
  const address = await port('h2');
  const t0 = Date.now();
  await pollUntil('route to the new port', () => (routes(c, net).includes(address) ? true : undefined), { timeoutMs: 1_000, intervalMs: 5 });
  assert.ok(Date.now() - t0 < 1_000);
  const vr = await call(srv.url, 'POST', '/fqname-to-id', { type: 'virtual-router', fq_name: ['default-global-system-config', 'h1'] });
  assert.equal(vr.status, 200, 'the control node made the agent\'s virtual-router');
  c.stop();
  await kill9(node);
});

test('two control nodes: kill -9 of the active one changes nothing in the document; headless keeps it; a returning node resyncs', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const nodes = { c1: await startNode('c1', [], p1), c2: await startNode('c2', [], p2) };
  const c = client([nodes.c1.url, nodes.c2.url]);
  await pollUntil('two sessions in sync', () => (c.status().filter((s) => s.synced).length === 2 ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
  // The first to sync is active (under load either may be): kill that one.
  const active = c.status()[0]!.node as 'c1' | 'c2';
  assert.ok(c.status()[0]!.active && (active === 'c1' || active === 'c2'), 'one node is active, the other a standby');
  const standby = active === 'c1' ? 'c2' : 'c1';
  const before = JSON.stringify([...c.doc!].sort());
  let changes = 0;
  c.on('change', () => changes++);
  await kill9(nodes[active]);
  await pollUntil(`failover to ${standby}`, () => (c.status()[0]?.node === standby && c.status()[0]?.active ? true : undefined), { timeoutMs: 5_000, intervalMs: 10 });
  assert.equal(JSON.stringify([...c.doc!].sort()), before, 'the standby had the same document');
  // The survivor keeps updating.
  const a = await port('h2');
  await pollUntil(`route via ${standby}`, () => (routes(c, net).includes(a) ? true : undefined), { timeoutMs: 2_000, intervalMs: 10 });
  assert.ok(changes >= 1);
  // All down: the document stays (headless).
  await kill9(nodes[standby]);
  await pollUntil('no session', () => (c.status().length === 0 ? true : undefined), { timeoutMs: 5_000, intervalMs: 10 });
  assert.equal(c.synced, false);
  assert.ok(routes(c, net).includes(a), 'headless: the last document is kept');
  // Configuration changes while headless arrive with the resync of a returning node.
  const b = await port('h2');
  const back = await startNode('c1', [], p1);
  await pollUntil('resync brings the route made while headless', () => (c.synced && routes(c, net).includes(b) ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
  c.stop();
  await kill9(back);
});

test('the last document is kept on disk and read back by a new client', async () => {
  const node = await startNode('disk');
  const file = path.join(dir, 'doc.json');
  const c = client([node.url], { stateFile: file });
  await pollUntil('sync', () => (c.synced ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
  const want = routes(c, net);
  c.stop();
  await kill9(node);
  const again = new ControlClient({ urls: ['ws://127.0.0.1:1'], host: 'h1', token: 'x', stateFile: file });
  assert.deepEqual(routes(again, net), want);
  fs.writeFileSync(file, '[["r/x", {"bad": true}]]');
  assert.equal(new ControlClient({ urls: ['ws://127.0.0.1:1'], host: 'h1', token: 'x', stateFile: file }).doc, undefined, 'a damaged file is not trusted');
});

test('TLS: wss with the CA works, a client without the CA is refused; with --tls-ca, an agent needs a certificate', async () => {
  const pki = path.join(dir, 'pki');
  fs.mkdirSync(pki);
  const ssl = (...args: string[]) => run('openssl', args, { cwd: pki });
  await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=cirrus-test-ca');
  for (const who of ['server', 'agent']) {
    await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
    fs.writeFileSync(path.join(pki, `${who}.ext`), who === 'server' ? 'subjectAltName=IP:127.0.0.1\n' : 'extendedKeyUsage=clientAuth\n');
    await ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '1', '-extfile', `${who}.ext`);
  }
  const f = (n: string) => path.join(pki, n);
  const read = (n: string) => fs.readFileSync(f(n));
  const tls = await startNode('tls', ['--tls-cert', f('server.pem'), '--tls-key', f('server.key')]);
  assert.match(tls.url, /^wss:/);
  const ok = client([tls.url], { tls: { ca: read('ca.pem') } });
  await pollUntil('wss sync', () => (ok.synced ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
  assert.match(await attempt(tls.url, {}), /self[- ]signed|unable to verify|certificate/i, 'the server certificate is checked');
  ok.stop();
  await kill9(tls);

  const mtls = await startNode('mtls', ['--tls-cert', f('server.pem'), '--tls-key', f('server.key'), '--tls-ca', f('ca.pem')]);
  const withCert = client([mtls.url], { tls: { ca: read('ca.pem'), cert: read('agent.pem'), key: read('agent.key') } });
  await pollUntil('mTLS sync', () => (withCert.synced ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
  assert.notEqual(await attempt(mtls.url, { ca: read('ca.pem') }), 'open', 'no client certificate, no session');
  withCert.stop();
  await kill9(mtls);
});
