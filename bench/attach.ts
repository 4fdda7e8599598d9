// Attaches N workloads (default 1,000) to one host through the real agent and measures
// the time until all of them are reachable, and the agent's no-change reconcile time.
//
//   node dist/bench/attach.js [--workloads 1000] [--concurrency 256] [--json]
//
// Setup (not timed): the server, a host namespace with its agent, one network, N workload
// namespaces, and the N ports' API objects (a CNI plugin or `netns attach` makes those
// before asking the agent). Timed: all N `POST /ports` to the agent (concurrently, as a
// container runtime starting pods would) until every answer came back, then a sweep from
// a probe workload pinging every address until all answered. Baseline in the same run:
// the same namespace-side configuration done by plain `ip -n NS -batch` per namespace,
// without Cirrus (the floor of this kernel and of spawning `ip`).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { run } from '../src/agent/dataplane/kernel.js';
import { requestJson } from '../src/util/http-client.js';
import { type ControlProcess, startControlIn } from '../test/support/agent.js';
import { CIRRUS, REPO, startServer } from '../test/support/server.js';
import { flagNumber, flagSet } from './support/flags.js';

const N = flagNumber('--workloads', 1000);
/** Attach requests in flight, as a container runtime starting many pods at once. */
const CONCURRENCY = flagNumber('--concurrency', 256);
const asJson = flagSet('--json');
const prefix = `ba${process.pid}`;
const hostNs = `${prefix}-h1`;
const ws = Array.from({ length: N }, (_, i) => `${prefix}-w${i}`);

async function ip(lines: string[], netns?: string): Promise<void> {
  const r = await run('ip', [...(netns ? ['-n', netns] : []), '-force', '-batch', '-'], lines.join('\n') + '\n');
  if (r.code !== 0) throw new Error(`ip -batch: ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
}

async function pool<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

/**
 * The kernel's ARP table is one for the whole machine, shared by every namespace, and
 * holds 1024 entries by default: a thousand workloads (each resolving its gateway, the
 * probe resolving them all) need more. Raised for the run, restored after.
 */
const GC_THRESH = ['gc_thresh1', 'gc_thresh2', 'gc_thresh3'].map((k) => `/proc/sys/net/ipv4/neigh/default/${k}`);
const GC_THRESH_BENCH = ['4096', '65536', '131072'];

async function main(): Promise<void> {
  const savedGc = GC_THRESH.map((f) => fs.readFileSync(f, 'utf8').trim());
  GC_THRESH.forEach((f, i) => fs.writeFileSync(f, GC_THRESH_BENCH[i]!));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-bench-attach-'));
  const server = await startServer(path.join(dir, 'data'), ['--socket', path.join(dir, 'api.sock')]);
  let agentPid: number | undefined;
  let control: ControlProcess | undefined;
  try {
    await ip([`netns add ${hostNs}`, ...ws.map((w) => `netns add ${w}`)]);
    await ip(['link set lo up'], hostNs);
    // Agents follow a control node (with its token): one beside the agent, in its namespace.
    const token = path.join(dir, 'control.token');
    control = await startControlIn(hostNs, `unix:${dir}/api.sock`, ['--listen', '127.0.0.1:0', '--token-file', token, '--name', 'c1']);
    const agent = spawn('ip', ['netns', 'exec', hostNs, process.execPath, CIRRUS, 'agent', '--host', 'h1', '--state', `${dir}/h1`, '--port-socket', `${dir}/h1.sock`, '--control', control.url, '--control-token-file', token], { stdio: 'ignore' });
    agentPid = agent.pid;
    const agentUrl = `unix:${dir}/h1.sock`;
    const api = server.url;
    for (let deadline = Date.now() + 15_000; ; ) {
      const ok = await requestJson(agentUrl, 'GET', '/ports').then(() => true, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error('agent did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    const net = await requestJson<{ 'virtual-network': { uuid: string } }>(api, 'POST', '/virtual-networks', {
      'virtual-network': {
        fq_name: ['default-domain', 'admin', 'bench'],
        network_ipam_refs: [{ to: ['default-domain', 'admin', 'default-network-ipam'], attr: { ipam_subnets: [{ subnet: { ip_prefix: '10.200.0.0', ip_prefix_len: 16 }, addr_from_start: true }] } }],
      },
    });
    const netUuid = net['virtual-network'].uuid;
    const vmis: string[] = new Array(N);
    const addresses: string[] = new Array(N);
    const tApi = performance.now();
    await pool(ws, 32, async (w, i) => {
      const vmi = await requestJson<{ 'virtual-machine-interface': { uuid: string } }>(api, 'POST', '/virtual-machine-interfaces', {
        'virtual-machine-interface': { fq_name: ['default-domain', 'admin', w], virtual_network_refs: [{ uuid: netUuid }] },
      });
      vmis[i] = vmi['virtual-machine-interface'].uuid;
      const iip = await requestJson<{ 'instance-ip': { uuid: string } }>(api, 'POST', '/instance-ips', {
        'instance-ip': { virtual_network_refs: [{ uuid: netUuid }], virtual_machine_interface_refs: [{ uuid: vmis[i] }] },
      });
      const read = await requestJson<{ 'instance-ip': { instance_ip_address: string } }>(api, 'GET', `/instance-ip/${iip['instance-ip'].uuid}`);
      addresses[i] = read['instance-ip'].instance_ip_address;
    });
    const apiMs = performance.now() - tApi;

    // Timed: the agent attaches all workloads.
    const t0 = performance.now();
    await pool(ws, CONCURRENCY, async (w, i) => {
      const p = await requestJson<{ status: string }>(agentUrl, 'POST', '/ports', { vmi_uuid: vmis[i], netns: w }, 60_000);
      if (p.status !== 'active') throw new Error(`${w}: ${JSON.stringify(p)}`);
    });
    const attachedMs = performance.now() - t0;
    const sweepScript = path.join(REPO, 'bench/support/icmp_sweep.py');
    const sweep = await run('ip', ['netns', 'exec', ws[0]!, 'python3', sweepScript, '10', ...addresses.slice(1)]);
    const swept = JSON.parse(sweep.stdout) as { answered: number; total: number; ms: number };
    const reachableMs = performance.now() - t0;

    // No-change reconcile: ask for passes and read their duration from the agent's metrics.
    const passes: number[] = [];
    for (let i = 0; i < 5; i++) {
      await requestJson(agentUrl, 'POST', '/syncports', {});
      const h = await run('ip', ['netns', 'exec', hostNs, 'curl', '-s', '127.0.0.1:8085/healthz']);
      passes.push((JSON.parse(h.stdout) as { last_reconcile: { duration_ms: number; changes: number } }).last_reconcile.duration_ms);
    }
    passes.sort((a, b) => a - b);

    // Baseline: the namespace side alone with plain ip, one batch per namespace, 8 at a time.
    const base = Array.from({ length: Math.min(N, 200) }, (_, i) => `${prefix}-b${i}`);
    await ip(base.map((b) => `netns add ${b}`));
    await ip(base.map((b, i) => `link add ${prefix}b${i} type veth peer name eth0 netns ${b}`));
    const tb = performance.now();
    await pool(base, 8, async (b, i) => ip(['link set dev lo up', 'link set dev eth0 up', `addr add 10.201.${i >> 8}.${i & 255}/16 dev eth0`], b));
    const baselinePerNs = (performance.now() - tb) / base.length;
    await ip(base.map((_, i) => `link del ${prefix}b${i}`));
    await ip(base.map((b) => `netns del ${b}`));

    const result = {
      workloads: N,
      api_objects_ms: Math.round(apiMs),
      attach_ms: Math.round(attachedMs),
      reachable_ms: Math.round(reachableMs),
      answered: swept.answered,
      of: swept.total,
      noop_reconcile_ms: { p50: passes[2], min: passes[0], max: passes[4] },
      baseline_ip_per_namespace_ms: Math.round(baselinePerNs * 100) / 100,
      agent_per_port_ms: Math.round((attachedMs / N) * 100) / 100,
    };
    if (asJson) console.log(JSON.stringify(result));
    else {
      console.log(`workloads attached to one host:         ${N}`);
      console.log(`API objects (VMI + instance-ip), setup:  ${result.api_objects_ms} ms`);
      console.log(`agent: all ${N} POST /ports answered:    ${result.attach_ms} ms (${result.agent_per_port_ms} ms per port)`);
      console.log(`all reachable (ICMP sweep ${swept.answered}/${swept.total}):       ${result.reachable_ms} ms   target < 5000 ms`);
      console.log(`no-change reconcile of ${N} ports:       p50 ${passes[2]} ms (min ${passes[0]}, max ${passes[4]})   target < 100 ms`);
      console.log(`baseline: plain ip -n NS -batch per ns:  ${result.baseline_ip_per_namespace_ms} ms per namespace (8 in parallel)`);
    }
    if (swept.answered !== swept.total) process.exitCode = 1;
  } finally {
    if (agentPid !== undefined) {
      try {
        process.kill(agentPid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await control?.stop();
    await server.cleanup();
    const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${prefix}-`));
    if (left.length) await ip(left.map((n) => `netns del ${n}`));
    fs.rmSync(dir, { recursive: true, force: true });
    GC_THRESH.forEach((f, i) => fs.writeFileSync(f, savedGc[i]!));
  }
}

await main();
