// The lab end to end, as root: `cirrus lab` builds hosts, an underlay, the server and real
// agents; workloads talk (ping, TCP) inside a network, not across networks, and with the
// same addresses in two networks; an agent killed with SIGKILL and restarted loses no
// packet; a route deleted behind the agent's back comes back; `workload del` and
// `lab down` leave nothing. A unique lab name and a free port per run; torn down in `after`.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { LabStatus } from '../../src/lab/status.js';
import { pollUntil } from '../../src/util/poll.js';
import { CIRRUS, call, freePort } from '../support/server.js';

const LAB = `t${process.pid}`;
const W = (s: string) => `${LAB}${s}`; // workload namespaces are global: unique per run too
const H1 = `${LAB}-h1`;
const H2 = `${LAB}-h2`;
const HTTP_PORT = '8080';
// Hosts are network namespaces: these tests need root (CI runs as root), and fail without it.
if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, bounded in time; never throws on a non-zero exit. */
function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let apiPort = 0;
const api = () => `http://127.0.0.1:${apiPort}`;
const cirrus = (...args: string[]) => sh(process.execPath, [CIRRUS, ...args], { CIRRUS_API: api() });
const inside = (target: string, ...cmd: string[]) => cirrus('lab', 'exec', target, '--name', LAB, '--', ...cmd);
const ok = (r: Run, what: string) => assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);

async function status(): Promise<LabStatus> {
  const r = await cirrus('-o', 'json', 'lab', 'status', '--name', LAB);
  ok(r, 'lab status');
  return JSON.parse(r.stdout) as LabStatus;
}

const children = new Set<ChildProcess>();

/**
 * A minimal HTTP server answering every request with argv[3]. Not `python3 -m http.server`:
 * it resolves its address's name at start, and a workload's DNS queries go unanswered.
 */
const HTTP_SERVER = `
import socket, sys
body = sys.argv[3].encode()
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    c, _ = srv.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\\r\\ncontent-length: %d\\r\\n\\r\\n%s" % (len(body), body))
    c.close()
`;

/** An HTTP server in `workload` answering `who`; resolves once it answers locally. */
async function serve(workload: string, address: string, who: string): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, [CIRRUS, 'lab', 'exec', workload, '--name', LAB, '--', 'python3', '-c', HTTP_SERVER, address, HTTP_PORT, who], { stdio: 'ignore' });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.kill('SIGTERM'); // `lab exec` passes it on to the server
    await exited;
    children.delete(child);
  };
  try {
    await pollUntil(`http server in ${workload}`, async () => ((await inside(workload, 'curl', '-s', '-m', '1', `http://${address}:${HTTP_PORT}/`)).stdout === who ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });
  } catch (e) {
    await stop();
    throw e;
  }
  return stop;
}

const get = (from: string, address: string) => inside(from, 'curl', '-s', '-m', '2', `http://${address}:${HTTP_PORT}/`);
const ping = (from: string, address: string, count = 3) => inside(from, 'ping', '-c', String(count), '-i', '0.2', '-W', '1', address);

describe('cirrus lab', () => {
  let rootBefore: string[] = [];
  /** The root namespace's addresses and routes (without lifetimes and counters, which move by themselves). */
  const rootState = async () => {
    const [addrs, routes] = await Promise.all([sh('ip', ['-j', 'addr', 'show']), sh('ip', ['-j', 'route', 'show', 'table', 'all'])]);
    const a = (JSON.parse(addrs.stdout) as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[]).flatMap((l) => l.addr_info.map((i) => `${l.ifname} ${i.local}/${i.prefixlen}`));
    const r = (JSON.parse(routes.stdout) as { dst: string; dev?: string; table?: string }[]).map((x) => `${x.table ?? 'main'} ${x.dst} ${x.dev ?? ''}`);
    return [...a, ...r].sort();
  };

  before(async () => {
    apiPort = await freePort();
    rootBefore = await rootState();
    ok(await cirrus('lab', 'up', '--hosts', '2', '--name', LAB, '--api-port', String(apiPort)), 'lab up');
    ok(await cirrus('network', 'create', 'red', '--subnet', '192.168.10.0/24'), 'network red');
    ok(await cirrus('network', 'create', 'green', '--subnet', '192.168.20.0/24'), 'network green');
    ok(await cirrus('network', 'create', 'ov1', '--subnet', '10.10.0.0/24'), 'network ov1');
    ok(await cirrus('network', 'create', 'ov2', '--subnet', '10.10.0.0/24'), 'network ov2');
    const add = (w: string, net: string, ip: string) => cirrus('lab', 'workload', 'add', W(w), '--host', 'h1', '--network', net, '--ip', ip, '--name', LAB);
    // Concurrent adds: each workload has its own record, and the agent serialises the plumbing.
    const results = await Promise.all([
      add('r1', 'red', '192.168.10.11'),
      add('r2', 'red', '192.168.10.12'),
      add('g1', 'green', '192.168.20.11'),
      add('o1a', 'ov1', '10.10.0.11'),
      add('o1b', 'ov1', '10.10.0.12'),
      add('o2a', 'ov2', '10.10.0.11'),
      add('o2b', 'ov2', '10.10.0.12'),
    ]);
    results.forEach((r, i) => ok(r, `workload add #${i + 1}`));
  });

  after(async () => {
    for (const c of children) c.kill('SIGTERM');
    const r = await cirrus('lab', 'down', '--name', LAB);
    assert.equal(r.code, 0, r.stderr);
  });

  test('up builds hosts on an underlay, the server and an agent per host, and nothing in the root namespace', async () => {
    const s = await status();
    assert.equal(s.server.healthy, true);
    assert.deepEqual(s.hosts.map((h) => [h.name, h.netns, h.underlay]), [['h1', H1, '10.254.0.1/24'], ['h2', H2, '10.254.0.2/24']]);
    for (const h of s.hosts) assert.equal(h.agent.healthy, true, `agent ${h.name}: ${h.agent.health}`);
    assert.equal((await call(api(), 'GET', '/healthz')).status, 200);
    ok(await inside('h1', 'ping', '-c', '1', '-W', '2', '10.254.0.2'), 'underlay h1 -> h2');
    assert.deepEqual(await rootState(), rootBefore, 'the root namespace has the same addresses and routes');

    const again = await cirrus('lab', 'up', '--hosts', '2', '--name', LAB, '--api-port', String(apiPort));
    ok(again, 'second lab up');
    const s2 = await status();
    assert.deepEqual([s2.server.pid, ...s2.hosts.map((h) => h.agent.pid)], [s.server.pid, ...s.hosts.map((h) => h.agent.pid)], 'a second up reuses the processes');

    assert.equal((await inside(W('r1'), 'sh', '-c', 'exit 7')).code, 7, 'lab exec passes the exit status through');
    const dup = await cirrus('lab', 'workload', 'add', W('r1'), '--host', 'h1', '--network', 'red', '--name', LAB);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already has workload/);
  });

  test('workloads of one network on one host: ping and TCP', async () => {
    ok(await ping(W('r1'), '192.168.10.12'), 'ping r1 -> r2');
    const stop = await serve(W('r2'), '192.168.10.12', 'r2');
    try {
      const r = await get(W('r1'), '192.168.10.12');
      ok(r, 'curl r1 -> r2');
      assert.equal(r.stdout, 'r2');
    } finally {
      await stop();
    }
  });

  test('networks are isolated: no ping, no TCP', async () => {
    assert.notEqual((await ping(W('r1'), '192.168.20.11', 2)).code, 0, 'ping red -> green fails');
    assert.notEqual((await ping(W('g1'), '192.168.10.12', 2)).code, 0, 'ping green -> red fails');
    const stop = await serve(W('g1'), '192.168.20.11', 'g1');
    try {
      assert.notEqual((await get(W('r1'), '192.168.20.11')).code, 0, 'TCP red -> green fails');
    } finally {
      await stop();
    }
  });

  test('overlapping subnets on one host: the same address in two networks, each reaches its own peer', async () => {
    ok(await ping(W('o1a'), '10.10.0.12'), 'ping ov1');
    ok(await ping(W('o2a'), '10.10.0.12'), 'ping ov2');
    const stops = [await serve(W('o1b'), '10.10.0.12', 'o1b'), await serve(W('o2b'), '10.10.0.12', 'o2b')];
    try {
      assert.equal((await get(W('o1a'), '10.10.0.12')).stdout, 'o1b');
      assert.equal((await get(W('o2a'), '10.10.0.12')).stdout, 'o2b');
    } finally {
      for (const stop of stops) await stop();
    }
  });

  test('agent SIGKILL and restart under a continuous ping: no packet lost', async () => {
    const before = (await status()).hosts[0]!.agent.pid;
    assert.ok(before, 'agent h1 runs');
    let out = '';
    const pinger = spawn(process.execPath, [CIRRUS, 'lab', 'exec', W('r1'), '--name', LAB, '--', 'ping', '-i', '0.02', '-c', '300', '-W', '1', '192.168.10.12'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(pinger);
    pinger.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const done = new Promise<number>((resolve) => pinger.once('exit', (code) => resolve(code ?? -1)));
    await pollUntil('first echo reply', () => (out.includes('bytes from') ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
    process.kill(before, 'SIGKILL');
    ok(await cirrus('lab', 'up', '--hosts', '2', '--name', LAB), 'lab up restarts the agent');
    const after = (await status()).hosts[0]!.agent;
    assert.notEqual(after.pid, before);
    assert.equal(after.healthy, true);
    assert.equal(pinger.exitCode, null, 'the restart happened while the ping ran');
    const code = await Promise.race([done, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('ping did not end')), 30_000).unref())]);
    children.delete(pinger);
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    assert.ok(m, out);
    assert.deepEqual([m[1], m[2], code], ['300', '300', 0], out.split('\n').slice(-4).join('\n'));
  });

  test('a route deleted behind the agent\'s back comes back', async () => {
    interface IpRoute {
      dst: string;
      dev?: string;
      table?: string;
    }
    const routes = async () => JSON.parse((await sh('ip', ['-n', H1, '-j', 'route', 'show', 'table', 'all', 'proto', '77'])).stdout) as IpRoute[];
    const r2 = (await routes()).find((r) => r.dst === '192.168.10.12');
    assert.ok(r2?.table, 'the agent installed a route to r2');
    ok(await sh('ip', ['-n', H1, 'route', 'del', '192.168.10.12/32', 'table', r2.table]), 'route del');
    const back = await pollUntil('the route back', async () => (await routes()).find((r) => r.dst === '192.168.10.12' && r.table === r2.table), { timeoutMs: 15_000, intervalMs: 50 });
    assert.equal(back.dev, r2.dev);
    ok(await ping(W('r1'), '192.168.10.12', 1), 'ping after the repair');
  });

  test('workload del leaves no namespace, no host link and no API object', async () => {
    const add = await cirrus('-o', 'json', 'lab', 'workload', 'add', W('d1'), '--host', 'h2', '--network', 'red', '--name', LAB);
    ok(add, 'workload add on h2');
    const w = JSON.parse(add.stdout) as { vmiUuid: string; hostIf: string; address: string };
    assert.ok(fs.existsSync(`/run/netns/${W('d1')}`));
    assert.match((await sh('ip', ['-n', H2, '-br', 'link'])).stdout, new RegExp(`^${w.hostIf}@`, 'm'));
    assert.equal((await call(api(), 'GET', `/virtual-machine-interface/${w.vmiUuid}`)).status, 200);

    ok(await cirrus('lab', 'workload', 'del', W('d1'), '--name', LAB), 'workload del');
    assert.equal(fs.existsSync(`/run/netns/${W('d1')}`), false, 'namespace gone');
    assert.doesNotMatch((await sh('ip', ['-n', H2, '-br', 'link'])).stdout, /^cv-/m, 'no cv- link left on h2');
    assert.equal((await call(api(), 'POST', '/fqname-to-id', { type: 'virtual-machine', fq_name: [W('d1')] })).status, 404);
    assert.equal((await call(api(), 'GET', `/virtual-machine-interface/${w.vmiUuid}`)).status, 404);
    const ips = await call(api(), 'GET', `/instance-ips?back_ref_id=${w.vmiUuid}`);
    assert.deepEqual(ips.body['instance-ips'], []);
    const ports = await call(api(), 'GET', '/virtual-machine-interfaces');
    assert.equal((ports.body['virtual-machine-interfaces'] as unknown[]).length, 7, 'the other workloads keep theirs');
    assert.equal((await status()).workloads.some((x) => x.name === W('d1')), false);
  });

  test('lab down leaves no namespace, process or directory', async () => {
    const s = await status();
    const pids = [s.server.pid, ...s.hosts.map((h) => h.agent.pid)];
    const namespaces = [`${LAB}-fabric`, H1, H2, ...s.workloads.map((w) => w.name)];
    const down = await cirrus('lab', 'down', '--name', LAB);
    ok(down, 'lab down');
    const left = (fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []).filter((ns) => namespaces.includes(ns) || ns.startsWith(`${LAB}-`));
    assert.deepEqual(left, []);
    for (const pid of pids) assert.equal(fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), false, `pid ${pid} is gone`);
    assert.equal(fs.existsSync(`/run/cirrus/lab/${LAB}`), false, 'no lab directory');
    assert.notEqual((await call(api(), 'GET', '/healthz').catch(() => ({ status: 0 }))).status, 200, 'the API is gone');
    assert.match((await cirrus('lab', 'down', '--name', LAB)).stdout, /nothing to remove/);
  });
});
