// Convergence: the time from the API call that creates a port until a workload on another
// host reaches it, over many ports on a multi-host lab, against the same shape done by hand
// with `ip` (no Cirrus) in the same run.
//
//   node dist/bench/convergence.js [--ports 200] [--hosts 4] [--interval 5] [--timeout 10000] [--gap 100] [--trace-arp] [--json]   (as root)
//
// Cirrus side: `cirrus lab up --hosts H` (two control nodes, one agent per host), network
// `conv` 10.80.0.0/16, and one long-lived probe workload per host (`lab workload add`).
// Baseline: H hand-made host namespaces on a bridge (10.250.0.K/24), a `vxlan external`
// device in each, remote workloads as `A/32 encap ip id 100 dst VTEP via VTEP dev vx onlink`
// (Cirrus's own route shape), one probe workload per host, 10.81.0.0/16. Baseline
// workloads have a /32 and a permanent neighbour for their gateway (the host end's MAC):
// the floor, with no ARP on the path; Cirrus workloads have the subnet's prefix and the
// host answers their ARP by proxy (so one ARP exchange is on Cirrus's path).
// Raises the (machine-wide) ARP table thresholds for the run and restores them, as
// bench/attach.ts does. Exit status 1 if a port is never reached or the run fails; the
// target verdict (p99 < 300 ms) is printed, not the exit status.
//
// For each port i (host k = i mod H, probed from host j != k, rotating so that every pair
// is measured; the two sides alternate which goes first):
//   untimed: the workload's namespace is created (the container exists before its port);
//            the prober on host j starts pinging the new address every --interval ms
//            (an echo request is out before t0);
//   t0      (process.hrtime): Cirrus: just before `attach()` of src/cli/commands/netns.ts,
//            the code of `cirrus netns attach` and `lab workload add`, called in-process:
//            GET /ports on the agent of host k (its host name), the network's uuid, the
//            virtual-machine, the virtual-machine-interface bound to host k, the
//            instance-ip, then POST /ports to the agent (answers once the port is plumbed).
//            HTTP through src/util/http-client.ts (keep-alive agent; the agent on its unix
//            socket /run/cirrus/lab/LAB/hK/agent.sock).
//            Baseline: just before the `ip` batches: one per host (host k: veth with the
//            workload end in its namespace, local /32 and neighbour; then the workload's
//            own: address, gateway, default route; in parallel, each other host: its
//            encap route).
//   t1      the kernel's receive timestamp of the first echo reply at the prober.
// The prober (bench/support/icmp_prober.py) reports CLOCK_MONOTONIC times, the clock of
// process.hrtime: t1 - t0 needs no clock alignment (checked at start: the prober's clock
// read falls between two of ours). Route arrivals come from `ip monitor route` in every
// host namespace (arrival in this process: an upper bound of a few ms).
// --trace-arp: a packet watcher (bench/support/arp_trace.py) in each new Cirrus workload,
// started before t0, times the first echo request reaching it and its ARP exchanges (a
// diagnostic: one more process per port).
// Figures: p50/p95/p99/max of t1 - t0 per side (nearest rank: p99 of 200 is the 198th),
// the phases, and the ratio Cirrus / baseline.

import fs from 'node:fs';
import { run } from '../src/agent/dataplane/kernel.js';
import { ApiClient } from '../src/cli/client.js';
import { attach } from '../src/cli/commands/netns.js';
import type { CliContext } from '../src/cli/context.js';
import { CONTROL_NODES, agentSocket, controlName, controlSocket, hostNetns, introspectSocket } from '../src/lab/layout.js';
import { request } from '../src/util/http-client.js';
import { CIRRUS, freePort } from '../test/support/server.js';
import { flagNumber, flagSet } from './support/flags.js';
import { must } from './support/exec.js';
import { ArpTrace, Prober, RouteMonitor, now } from './support/probes.js';

// ---- options ----------------------------------------------------------------------------

const PORTS = flagNumber('--ports', 200);
const HOSTS = flagNumber('--hosts', 4);
/** Echo request period of the prober (ms). */
const INTERVAL_MS = flagNumber('--interval', 5);
/** Per port: how long the prober tries before the port counts as unreachable (ms). */
const TIMEOUT_MS = flagNumber('--timeout', 10_000);
/** Pause between two measurements (untimed), so one port's trailing work does not land in the next. */
const GAP_MS = flagNumber('--gap', 100);
const asJson = flagSet('--json');
const TRACE_ARP = flagSet('--trace-arp');
if (!Number.isInteger(HOSTS) || HOSTS < 2 || HOSTS > 32) throw new Error('--hosts: 2-32');
if (!Number.isInteger(PORTS) || PORTS > 10_000) throw new Error('--ports: 1-10000');
if (INTERVAL_MS < 1 || INTERVAL_MS > 1000) throw new Error('--interval: 1-1000 ms');
if (TIMEOUT_MS > 60_000) throw new Error('--timeout: at most 60000 ms');

// ---- names (unique per run) ----------------------------------------------------------------

const pid = process.pid;
const lab = `cv${pid}`.slice(0, 12);
/** Cirrus workloads (ports and probes): not the lab's `LAB-` names, cleaned up by prefix too. */
const cwp = `cw${pid}-`;
/** Everything of the baseline. */
const bp = `cb${pid}-`;
const cHost = (k: number) => `h${k + 1}`;
const cWork = (i: number) => `${cwp}${i}`;
const cProbe = (k: number) => `${cwp}p${k + 1}`;
const bHost = (k: number) => `${bp}h${k + 1}`;
const bWork = (i: number) => `${bp}w${i}`;
const bProbe = (k: number) => `${bp}p${k + 1}`;
const bFabric = `${bp}f`;
const NETWORK = 'conv';
/** Port i's address; probes get .0.11.. */
const cAddr = (i: number) => `10.80.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
const bAddr = (i: number) => `10.81.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
const cProbeAddr = (k: number) => `10.80.0.${11 + k}`;
const bProbeAddr = (k: number) => `10.81.0.${11 + k}`;
const bUnderlay = (k: number) => `10.250.0.${k + 1}`;
const hex2 = (n: number) => (n & 255).toString(16).padStart(2, '0');
const bVxMac = (k: number) => `02:bb:00:00:00:${hex2(k + 1)}`;
/** Baseline interfaces: host end hv<n> (its MAC doubles as the workload's gateway), workload end eth0. */
const bHostMac = (n: number) => `02:bc:00:${hex2(n >> 16)}:${hex2(n >> 8)}:${hex2(n)}`;
const bWorkMac = (n: number) => `02:bd:00:${hex2(n >> 16)}:${hex2(n >> 8)}:${hex2(n)}`;
const B_VNI = 100;
const B_GATEWAY = '169.254.1.1';

// ---- small helpers -------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (from: bigint, to: bigint | undefined): number | undefined => (to === undefined ? undefined : Number(to - from) / 1e6);
const say = (line: string) => process.stderr.write(`${line}\n`);


/** One `ip -batch` (in namespace `ns`); fails with ip's first messages. */
async function ipBatch(ns: string, lines: string[]): Promise<void> {
  const r = await run('ip', ['-n', ns, '-batch', '-'], lines.join('\n') + '\n');
  if (r.code !== 0) throw new Error(`ip -n ${ns} -batch: ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
}


const listNetns = (): string[] => {
  try {
    return fs.readdirSync('/run/netns');
  } catch {
    return [];
  }
};

/** Busy and total jiffies of the machine (all CPUs), for the load during the measurement. */
function cpuTimes(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

/** An API client that records when each of its requests started and ended. */
class TimedClient extends ApiClient {
  log: { method: string; path: string; start: bigint; end: bigint }[] = [];

  override async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const start = now();
    try {
      return await super.request<T>(method, path, body);
    } finally {
      this.log.push({ method, path, start, end: now() });
    }
  }
}

/**
 * The kernel's ARP table is shared by every namespace (1024 entries by default); the
 * workloads of both sides resolve one another. Raised for the run, restored after (as
 * bench/attach.ts does).
 */
const GC_THRESH = ['gc_thresh1', 'gc_thresh2', 'gc_thresh3'].map((k) => `/proc/sys/net/ipv4/neigh/default/${k}`);
const GC_THRESH_BENCH = [4096, 65536, 131072];

// ---- the run's resources and their clean-up ----------------------------------------------------

const probers: Prober[] = [];
const monitors: RouteMonitor[] = [];
const traces = new Set<ArpTrace>();
let labTried = false;
let savedGc: string[] | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    // Processes first (by the PIDs this run started): nothing of ours stays in a namespace.
    await Promise.all([...probers, ...monitors, ...traces].map((p) => p.stop().catch(() => undefined)));
    if (labTried) {
      const r = await run(process.execPath, [CIRRUS, 'lab', 'down', '--name', lab]);
      if (r.code !== 0) say(`lab down --name ${lab}: ${r.stderr.trim()}`);
    }
    for (const n of listNetns().filter((n) => n.startsWith(cwp) || n.startsWith(bp))) {
      const r = await run('ip', ['netns', 'del', n]);
      if (r.code !== 0) say(`ip netns del ${n}: ${r.stderr.trim()}`);
    }
    if (savedGc) GC_THRESH.forEach((f, i) => fs.writeFileSync(f, savedGc![i]!));
    const left = listNetns().filter((n) => n.startsWith(cwp) || n.startsWith(bp) || n.startsWith(`${lab}-`));
    if (left.length) say(`left behind: ${left.join(' ')}`);
  })();
  return cleaning;
}

/**
 * A signal stops the run between two steps: the probers go at once (a probe in flight
 * ends), the main loop notices and cleans up; if it does not within 20 s (a step that
 * hangs), the clean-up runs anyway.
 */
let aborting = false;
const checkAbort = () => {
  if (aborting) throw new Error('interrupted');
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    say(`${sig}: stopping and cleaning up`);
    aborting = true;
    for (const p of [...probers, ...traces]) void p.stop().catch(() => undefined);
    setTimeout(() => void cleanup().finally(() => process.exit(130)), 20_000).unref();
  });
}

// ---- the two sides ------------------------------------------------------------------------

interface Side {
  probers: Prober[];
  monitors: RouteMonitor[];
}

async function buildCirrus(env: NodeJS.ProcessEnv, port: number): Promise<Side> {
  labTried = true; // from here on `lab down` runs, even if `lab up` fails half-way
  await must(process.execPath, [CIRRUS, 'lab', 'up', '--hosts', String(HOSTS), '--name', lab, '--api-port', String(port)], env);
  await must(process.execPath, [CIRRUS, 'network', 'create', NETWORK, '--subnet', '10.80.0.0/16'], env);
  for (let k = 0; k < HOSTS; k++) {
    await must(process.execPath, [CIRRUS, 'lab', 'workload', 'add', cProbe(k), '--host', cHost(k), '--network', NETWORK, '--ip', cProbeAddr(k), '--name', lab], env);
  }
  return start(Array.from({ length: HOSTS }, (_, k) => cProbe(k)), Array.from({ length: HOSTS }, (_, k) => hostNetns(lab, cHost(k))));
}

/**
 * Host k's side of a baseline workload: veth (workload end in its namespace), neighbour,
 * /32. `replace`: a probe arriving once the route exists makes an incomplete entry.
 */
const bLocalLines = (n: number, ns: string, addr: string) => [
  `link add hv${n} address ${bHostMac(n)} type veth peer name eth0 netns ${ns} address ${bWorkMac(n)} mtu 1450`,
  `link set dev hv${n} up`,
  `neigh replace ${addr} lladdr ${bWorkMac(n)} dev hv${n} nud permanent`,
  `route add ${addr}/32 dev hv${n} scope link`,
];
/** The workload's own: address, gateway (a permanent neighbour: the host end's MAC), default route. */
const bWorkloadLines = (n: number, addr: string) => [
  'link set dev lo up',
  'link set dev eth0 up',
  `addr add ${addr}/32 dev eth0`,
  `neigh replace ${B_GATEWAY} lladdr ${bHostMac(n)} dev eth0 nud permanent`,
  `route add ${B_GATEWAY} dev eth0 scope link`,
  `route add default via ${B_GATEWAY} dev eth0`,
];
/** Another host's route to it. */
const bRemoteLines = (k: number, addr: string) => [`route add ${addr}/32 encap ip id ${B_VNI} dst ${bUnderlay(k)} via ${bUnderlay(k)} dev vx onlink`];

async function buildBaseline(): Promise<Side> {
  await must('ip', ['netns', 'add', bFabric]);
  await ipBatch(bFabric, ['link set dev lo up', 'link add br0 type bridge', 'link set dev br0 up']);
  for (let k = 0; k < HOSTS; k++) {
    const h = bHost(k);
    await must('ip', ['netns', 'add', h]);
    await must('ip', ['netns', 'exec', h, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
    await ipBatch(bFabric, [`link add h${k + 1} master br0 type veth peer name ul0 netns ${h}`, `link set dev h${k + 1} up`]);
    await ipBatch(h, [
      'link set dev lo up',
      `addr add ${bUnderlay(k)}/24 dev ul0`,
      'link set dev ul0 up',
      `link add vx address ${bVxMac(k)} mtu 1450 type vxlan external dstport 4789 nolearning`,
      'link set dev vx up',
      // As Cirrus: the subnet into the VXLAN device without a tunnel (dropped) until an address gets its route.
      'route add 10.81.0.0/16 dev vx',
      ...Array.from({ length: HOSTS }, (_, m) => m).filter((m) => m !== k).map((m) => `neigh add ${bUnderlay(m)} lladdr ${bVxMac(m)} dev vx nud permanent`),
    ]);
  }
  // Probe workloads, one per host, untimed; numbered after the ports' interfaces.
  for (let k = 0; k < HOSTS; k++) {
    const n = 60_000 + k;
    await must('ip', ['netns', 'add', bProbe(k)]);
    await ipBatch(bHost(k), bLocalLines(n, bProbe(k), bProbeAddr(k)));
    await ipBatch(bProbe(k), bWorkloadLines(n, bProbeAddr(k)));
    for (let m = 0; m < HOSTS; m++) if (m !== k) await ipBatch(bHost(m), bRemoteLines(k, bProbeAddr(k)));
  }
  return start(Array.from({ length: HOSTS }, (_, k) => bProbe(k)), Array.from({ length: HOSTS }, (_, k) => bHost(k)));
}

async function start(probeNs: string[], hostNs: string[]): Promise<Side> {
  const side: Side = { probers: probeNs.map((ns) => new Prober(ns)), monitors: hostNs.map((ns) => new RouteMonitor(ns)) };
  probers.push(...side.probers);
  monitors.push(...side.monitors);
  return side;
}

/** Every probe workload reaches every other one (the overlay works) before anything is measured. */
async function checkMesh(side: Side, addrs: string[], what: string): Promise<void> {
  for (let a = 0; a < HOSTS; a++) {
    for (let b = 0; b < HOSTS; b++) {
      if (a === b) continue;
      const r = await side.probers[a]!.probe(addrs[b]!, 20, 5_000).result;
      if (!r) throw new Error(`${what}: the probe workload on host ${a + 1} does not reach the one on host ${b + 1} (${addrs[b]})`);
    }
  }
}

// ---- one measurement ---------------------------------------------------------------------

interface Sample {
  side: 'cirrus' | 'baseline';
  i: number;
  host: string;
  probeHost: string;
  address: string;
  ok: boolean;
  error?: string;
  /** ms from t0. */
  reply?: number;
  /** When the prober read the reply (its scheduling delay on top of `reply`). */
  replyUser?: number;
  /** When the answered echo request left: convergence happened between the previous request and this one. */
  answeredSent?: number;
  probesSent?: number;
  /** Route events (ip monitor): the new port's own /32 on its host, the encap route on the probe's host. */
  localRoute?: number;
  remoteRoute?: number;
  /** The last remote host to get its encap route. */
  allRemoteRoutes?: number;
  /** Cirrus: the API phase (t0 → instance-ip created), then POST /ports (sent, answered). */
  apiDone?: number;
  agentSent?: number;
  agentAnswered?: number;
  /** Baseline: host k's and the workload's batches done, the probe host's batch done, every remote batch done. */
  localDone?: number;
  remoteDone?: number;
  allRemotesDone?: number;
  /** --trace-arp (Cirrus): seen in the new workload, ms from t0. */
  trace?: { echoIn?: number; arpRequestsOut: number[]; arpReplyIn?: number; echoReplyOut?: number };
}

function routeTimes(side: Side, t0: bigint, address: string, k: number, j: number): Pick<Sample, 'localRoute' | 'remoteRoute' | 'allRemoteRoutes'> {
  const local = ms(t0, side.monitors[k]!.seen.get(address)?.local);
  const remote = ms(t0, side.monitors[j]!.seen.get(address)?.encap);
  const others = side.monitors.filter((_, m) => m !== k).map((mon) => ms(t0, mon.seen.get(address)?.encap));
  const all = others.every((x) => x !== undefined) ? Math.max(...(others as number[])) : undefined;
  return { ...(local !== undefined ? { localRoute: local } : {}), ...(remote !== undefined ? { remoteRoute: remote } : {}), ...(all !== undefined ? { allRemoteRoutes: all } : {}) };
}

function replyTimes(t0: bigint, r: Awaited<ReturnType<Prober['probe']>['result']>): Partial<Sample> {
  if (!r) return {};
  return { reply: ms(t0, r.recv)!, replyUser: ms(t0, r.user)!, answeredSent: ms(t0, r.seqSent)!, probesSent: r.sent };
}

interface CirrusClients {
  ctx: CliContext;
  api: TimedClient;
  agents: TimedClient[];
}

async function measureCirrus(side: Side, c: CirrusClients, i: number, k: number, j: number): Promise<Sample> {
  const address = cAddr(i);
  const base = { side: 'cirrus' as const, i, host: cHost(k), probeHost: cHost(j), address };
  let trace: ArpTrace | undefined;
  if (TRACE_ARP) {
    traces.add((trace = new ArpTrace(cWork(i))));
    await trace.ready;
  }
  const probe = side.probers[j]!.probe(address, INTERVAL_MS, TIMEOUT_MS);
  await probe.armed;
  const agent = c.agents[k]!;
  c.api.log = [];
  agent.log = [];
  const t0 = now();
  try {
    await attach(c.ctx, agent, { netns: cWork(i), network: NETWORK, ifname: 'eth0', ip: address });
  } catch (e) {
    probe.cancel();
    if (trace) await trace.stop().finally(() => traces.delete(trace!));
    return { ...base, ok: false, error: (e as Error).message };
  }
  const r = await probe.result;
  await sleep(5); // the monitors' last lines
  let traced: Sample['trace'];
  if (trace) {
    await trace.stop();
    traces.delete(trace);
    const ev = trace.events;
    const first = (kind: string, way: string) => ms(t0, ev.find((e) => e.kind === kind && e.way === way)?.t);
    traced = {
      arpRequestsOut: ev.filter((e) => e.kind === 'arp-request' && e.way === 'out').map((e) => ms(t0, e.t)!),
      ...opt('echoIn', first('echo-request', 'in')),
      ...opt('arpReplyIn', first('arp-reply', 'in')),
      ...opt('echoReplyOut', first('echo-reply', 'out')),
    };
  }
  const iip = c.api.log.find((l) => l.method === 'POST' && l.path === '/instance-ips');
  const post = agent.log.find((l) => l.method === 'POST' && l.path === '/ports');
  return {
    ...base,
    ok: !!r,
    ...(r ? {} : { error: `no echo reply within ${TIMEOUT_MS} ms` }),
    ...replyTimes(t0, r),
    ...routeTimes(side, t0, address, k, j),
    ...(iip ? { apiDone: ms(t0, iip.end)! } : {}),
    ...(post ? { agentSent: ms(t0, post.start)!, agentAnswered: ms(t0, post.end)! } : {}),
    ...(traced ? { trace: traced } : {}),
  };
}

async function measureBaseline(side: Side, i: number, k: number, j: number): Promise<Sample> {
  const address = bAddr(i);
  const base = { side: 'baseline' as const, i, host: cHost(k), probeHost: cHost(j), address };
  const probe = side.probers[j]!.probe(address, INTERVAL_MS, TIMEOUT_MS);
  await probe.armed;
  const t0 = now();
  let localDone: bigint | undefined;
  let remoteDone: bigint | undefined;
  try {
    await Promise.all([
      (async () => {
        await ipBatch(bHost(k), bLocalLines(i, bWork(i), address));
        await ipBatch(bWork(i), bWorkloadLines(i, address));
        localDone = now();
      })(),
      ...Array.from({ length: HOSTS }, (_, m) => m)
        .filter((m) => m !== k)
        .map(async (m) => {
          await ipBatch(bHost(m), bRemoteLines(k, address));
          if (m === j) remoteDone = now();
        }),
    ]);
  } catch (e) {
    probe.cancel();
    return { ...base, ok: false, error: (e as Error).message };
  }
  const allDone = now();
  const r = await probe.result;
  await sleep(5);
  return {
    ...base,
    ok: !!r,
    ...(r ? {} : { error: `no echo reply within ${TIMEOUT_MS} ms` }),
    ...replyTimes(t0, r),
    ...routeTimes(side, t0, address, k, j),
    localDone: ms(t0, localDone)!,
    remoteDone: ms(t0, remoteDone)!,
    allRemotesDone: ms(t0, allDone)!,
  };
}

// ---- the lab's own counters ------------------------------------------------------------------

/** Sums of the lab's Prometheus counters and histograms that tell where the time goes. */
interface Counters {
  reconciles: number;
  reconcileSeconds: number;
  kernelChanges: number;
  controlBatches: number;
  controlSeconds: number;
  deltas: number;
}

async function scrape(base: string): Promise<Map<string, number>> {
  const r = await request(base, 'GET', '/metrics', undefined, 5_000);
  const out = new Map<string, number>();
  for (const line of r.text.split('\n')) {
    const m = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
  }
  return out;
}

async function counters(): Promise<Counters> {
  const c: Counters = { reconciles: 0, reconcileSeconds: 0, kernelChanges: 0, controlBatches: 0, controlSeconds: 0, deltas: 0 };
  for (let k = 0; k < HOSTS; k++) {
    const m = await scrape(`unix:${introspectSocket(lab, cHost(k))}`);
    c.reconciles += m.get('cirrus_agent_reconcile_duration_seconds_count') ?? 0;
    c.reconcileSeconds += m.get('cirrus_agent_reconcile_duration_seconds_sum') ?? 0;
    c.kernelChanges += m.get('cirrus_agent_kernel_changes_total') ?? 0;
  }
  for (let n = 1; n <= CONTROL_NODES; n++) {
    const m = await scrape(`unix:${controlSocket(lab, controlName(n))}`);
    c.controlBatches += m.get('cirrus_control_compute_seconds_count') ?? 0;
    c.controlSeconds += m.get('cirrus_control_compute_seconds_sum') ?? 0;
    c.deltas += m.get('cirrus_control_deltas_total') ?? 0;
  }
  return c;
}

// ---- statistics ------------------------------------------------------------------------------

interface Dist {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

/** Nearest-rank quantiles. */
function dist(values: (number | undefined)[]): Dist | undefined {
  const v = values.filter((x): x is number => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const q = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))]!;
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: v.length, p50: r(q(0.5)), p95: r(q(0.95)), p99: r(q(0.99)), max: r(v[v.length - 1]!), min: r(v[0]!), mean: r(v.reduce((a, b) => a + b, 0) / v.length) };
}

const opt = <K extends string>(key: K, v: number | undefined): { [P in K]?: number } => (v === undefined ? {} : ({ [key]: v } as { [P in K]?: number }));
const diff = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a - b);

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const wall0 = now();
  savedGc = GC_THRESH.map((f) => fs.readFileSync(f, 'utf8').trim());
  GC_THRESH.forEach((f, i) => fs.writeFileSync(f, String(Math.max(Number(savedGc![i]), GC_THRESH_BENCH[i]!))));
  const port = await freePort();
  const env = { ...process.env, CIRRUS_API: `http://127.0.0.1:${port}` };
  say(`convergence: lab ${lab} (API 127.0.0.1:${port}), baseline ${bp}*, ${PORTS} ports on ${HOSTS} hosts`);
  const baseline = await buildBaseline();
  say('  baseline built');
  checkAbort();
  const cirrus = await buildCirrus(env, port);
  checkAbort();
  say('  lab up, network and probe workloads attached');
  let bracket = 0n;
  for (const p of [...baseline.probers, ...cirrus.probers]) {
    await p.clockCheck(); // the first answer waits for python to start
    const b = await p.clockCheck();
    if (b > bracket) bracket = b;
  }
  await checkMesh(baseline, Array.from({ length: HOSTS }, (_, k) => bProbeAddr(k)), 'baseline');
  await checkMesh(cirrus, Array.from({ length: HOSTS }, (_, k) => cProbeAddr(k)), 'cirrus');
  say(`  probers ready (clock check: same clock, bracket ${(Number(bracket) / 1e6).toFixed(2)} ms); every probe workload reaches every other`);
  const api = new TimedClient(`http://127.0.0.1:${port}`, `lab ${lab}'s API`);
  const clients: CirrusClients = {
    api,
    ctx: { api, project: 'admin', output: 'table' },
    agents: Array.from({ length: HOSTS }, (_, k) => new TimedClient(`unix:${agentSocket(lab, cHost(k))}`, `the agent of ${cHost(k)}`)),
  };
  const setupMs = ms(wall0, now())!;

  const samples: Sample[] = [];
  const counters0 = await counters();
  const cpu0 = cpuTimes();
  const load0 = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const measure0 = now();
  for (let i = 0; i < PORTS; i++) {
    checkAbort();
    const k = i % HOSTS;
    const j = (k + 1 + (Math.floor(i / HOSTS) % (HOSTS - 1))) % HOSTS;
    // Untimed: the containers exist before their ports.
    await must('ip', ['netns', 'add', cWork(i)]);
    await must('ip', ['netns', 'add', bWork(i)]);
    const order = i % 2 === 0 ? (['baseline', 'cirrus'] as const) : (['cirrus', 'baseline'] as const);
    for (const s of order) {
      await sleep(GAP_MS);
      checkAbort();
      samples.push(s === 'cirrus' ? await measureCirrus(cirrus, clients, i, k, j) : await measureBaseline(baseline, i, k, j));
      const last = samples.at(-1)!;
      if (!last.ok) say(`  port ${i} ${s}: ${last.error}`);
    }
    if ((i + 1) % 20 === 0 || i + 1 === PORTS) {
      const c = samples.filter((x) => x.side === 'cirrus' && x.ok);
      const b = samples.filter((x) => x.side === 'baseline' && x.ok);
      say(`  ${i + 1}/${PORTS}: cirrus p50 ${dist(c.map((x) => x.reply))?.p50 ?? '-'} ms, baseline p50 ${dist(b.map((x) => x.reply))?.p50 ?? '-'} ms`);
    }
  }
  const measureMs = ms(measure0, now())!;
  const cpu1 = cpuTimes();
  const counters1 = await counters();
  const per = (k: keyof Counters) => counters1[k] - counters0[k];
  const lab_counters = {
    agent_passes_per_port: Math.round((per('reconciles') / PORTS) * 10) / 10,
    agent_pass_mean_ms: Math.round((per('reconcileSeconds') / Math.max(1, per('reconciles'))) * 1e4) / 10,
    agent_busy_ms_per_port: Math.round((per('reconcileSeconds') / PORTS) * 1e4) / 10,
    kernel_changes_per_port: Math.round((per('kernelChanges') / PORTS) * 10) / 10,
    control_batches_per_port: Math.round((per('controlBatches') / PORTS / CONTROL_NODES) * 10) / 10,
    control_compute_mean_ms: Math.round((per('controlSeconds') / Math.max(1, per('controlBatches'))) * 1e4) / 10,
    control_deltas_per_port: Math.round((per('deltas') / PORTS / CONTROL_NODES) * 10) / 10,
  };
  const busyCores = ((cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total)) * (fs.readFileSync('/proc/stat', 'utf8').match(/^cpu\d+ /gm)?.length ?? 1);

  const C = samples.filter((s) => s.side === 'cirrus');
  const B = samples.filter((s) => s.side === 'baseline');
  const ok = (xs: Sample[]) => xs.filter((s) => s.ok);
  const cirrusReply = dist(ok(C).map((s) => s.reply))!;
  const baselineReply = dist(ok(B).map((s) => s.reply))!;
  const TARGET_P99_MS = 300;
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? Math.round((a / b) * 100) / 100 : undefined);
  const result = {
    ports: PORTS,
    hosts: HOSTS,
    interval_ms: INTERVAL_MS,
    gap_ms: GAP_MS,
    unreachable: { cirrus: C.filter((s) => !s.ok).length, baseline: B.filter((s) => !s.ok).length },
    cirrus: {
      reply: cirrusReply,
      api_done: dist(ok(C).map((s) => s.apiDone)),
      agent_post: dist(ok(C).map((s) => diff(s.agentAnswered, s.agentSent))),
      agent_answered: dist(ok(C).map((s) => s.agentAnswered)),
      local_route: dist(ok(C).map((s) => s.localRoute)),
      remote_route: dist(ok(C).map((s) => s.remoteRoute)),
      all_remote_routes: dist(ok(C).map((s) => s.allRemoteRoutes)),
      reply_after_remote_route: dist(ok(C).map((s) => diff(s.reply, s.remoteRoute))),
      reply_after_both_routes: dist(ok(C).map((s) => diff(s.reply, Math.max(s.remoteRoute ?? NaN, s.localRoute ?? NaN)))),
      reply_user: dist(ok(C).map((s) => s.replyUser)),
      /** Ports whose first reply came more than 100 ms after both routes existed (ARP retries, proxy delay). */
      late_after_routes: ok(C).filter((s) => (diff(s.reply, Math.max(s.remoteRoute ?? NaN, s.localRoute ?? NaN)) ?? 0) > 100).length,
    },
    baseline: {
      reply: baselineReply,
      local_done: dist(ok(B).map((s) => s.localDone)),
      remote_done: dist(ok(B).map((s) => s.remoteDone)),
      all_remotes_done: dist(ok(B).map((s) => s.allRemotesDone)),
      local_route: dist(ok(B).map((s) => s.localRoute)),
      remote_route: dist(ok(B).map((s) => s.remoteRoute)),
      reply_after_batches: dist(ok(B).map((s) => diff(s.reply, Math.max(s.remoteDone ?? NaN, s.localDone ?? NaN)))),
      reply_user: dist(ok(B).map((s) => s.replyUser)),
    },
    ratio: { p50: ratio(cirrusReply?.p50, baselineReply?.p50), p95: ratio(cirrusReply?.p95, baselineReply?.p95), p99: ratio(cirrusReply?.p99, baselineReply?.p99), max: ratio(cirrusReply?.max, baselineReply?.max) },
    ...(TRACE_ARP
      ? {
          arp_trace: {
            traced: ok(C).filter((s) => s.trace).length,
            workload_sent_more_than_one_arp_request: ok(C).filter((s) => (s.trace?.arpRequestsOut.length ?? 0) > 1).length,
            first_echo_in: dist(ok(C).map((s) => s.trace?.echoIn)),
            echo_in_to_reply: dist(ok(C).map((s) => diff(s.reply, s.trace?.echoIn))),
          },
        }
      : {}),
    target: { p99_ms: TARGET_P99_MS, pass: cirrusReply !== undefined && cirrusReply.p99 < TARGET_P99_MS && C.every((s) => s.ok) },
    lab_counters,
    machine: { busy_cores_during_measurement: Math.round(busyCores * 100) / 100, loadavg_at_start: load0, clock_check_bracket_ms: Number(bracket) / 1e6 },
    wall_s: { setup: Math.round(setupMs / 100) / 10, measurement: Math.round(measureMs / 100) / 10 },
    slowest_cirrus: [...ok(C)].sort((a, b) => b.reply! - a.reply!).slice(0, 8),
    slowest_baseline: [...ok(B)].sort((a, b) => b.reply! - a.reply!).slice(0, 3),
    samples,
  };
  return report(result) ? 0 : 1;

  function report(r: typeof result): boolean {
    const f = (x: number | undefined, w = 8) => (x === undefined ? '-' : x.toFixed(1)).padStart(w);
    const line = (label: string, d: Dist | undefined) => `  ${label.padEnd(44)}${f(d?.p50)}${f(d?.p95)}${f(d?.p99)}${f(d?.max)}`;
    const out: string[] = [];
    out.push(`convergence over ${PORTS} ports on ${HOSTS} hosts (probe every ${INTERVAL_MS} ms from another host; ${GAP_MS} ms between measurements; sides alternate)`);
    out.push(`  ${'ms from t0'.padEnd(44)}${'p50'.padStart(8)}${'p95'.padStart(8)}${'p99'.padStart(8)}${'max'.padStart(8)}`);
    out.push('cirrus (t0: attach(), the first request of `netns attach`):');
    out.push(line('API objects done (VM, VMI, instance-ip)', r.cirrus.api_done));
    out.push(line('POST /ports round trip (local plumbing)', r.cirrus.agent_post));
    out.push(line('agent answered POST /ports', r.cirrus.agent_answered));
    out.push(line('local /32 route on its host (ip monitor)', r.cirrus.local_route));
    out.push(line("encap route on the probe's host (ip monitor)", r.cirrus.remote_route));
    out.push(line('encap route on every other host', r.cirrus.all_remote_routes));
    out.push(line('FIRST ECHO REPLY (convergence)', r.cirrus.reply));
    out.push(line('  reply - later of the two routes', r.cirrus.reply_after_both_routes));
    out.push(`    (${r.cirrus.late_after_routes} of ${PORTS} ports answered more than 100 ms after both routes existed)`);
    out.push('baseline (t0: the first `ip -batch`; by hand, no Cirrus):');
    out.push(line('host k + workload batches done', r.baseline.local_done));
    out.push(line("probe host's encap route batch done", r.baseline.remote_done));
    out.push(line('every remote batch done', r.baseline.all_remotes_done));
    out.push(line('FIRST ECHO REPLY (convergence)', r.baseline.reply));
    out.push(line("  reply - later of host k's and the probe host's batches", r.baseline.reply_after_batches));
    out.push(`ratio cirrus / baseline: p50 ${r.ratio.p50}  p95 ${r.ratio.p95}  p99 ${r.ratio.p99}  max ${r.ratio.max}`);
    if (r.arp_trace) {
      out.push(line('first echo request reaches the new workload', r.arp_trace.first_echo_in));
      out.push(`arp trace: ${r.arp_trace.workload_sent_more_than_one_arp_request} of ${r.arp_trace.traced} new workloads sent more than one ARP request before answering; reply - first echo request in: p50 ${r.arp_trace.echo_in_to_reply?.p50} p99 ${r.arp_trace.echo_in_to_reply?.p99} max ${r.arp_trace.echo_in_to_reply?.max} ms`);
    }
    out.push(`unreachable within ${TIMEOUT_MS} ms: cirrus ${r.unreachable.cirrus}, baseline ${r.unreachable.baseline}`);
    out.push(`target p99 < ${TARGET_P99_MS} ms: ${r.target.pass ? 'PASS' : 'FAIL'} (cirrus p99 ${r.cirrus.reply?.p99} ms)`);
    const lc = r.lab_counters;
    out.push(`lab counters per port (all ${HOSTS} agents; per control node): ${lc.agent_passes_per_port} reconcile passes of ${lc.agent_pass_mean_ms} ms on average (${lc.agent_busy_ms_per_port} ms of passes), ${lc.kernel_changes_per_port} kernel changes; control: ${lc.control_batches_per_port} config batches of ${lc.control_compute_mean_ms} ms, ${lc.control_deltas_per_port} deltas sent`);
    out.push(`machine: ${r.machine.busy_cores_during_measurement} cores busy during the measurement (everything: lab, baseline, this process, other jobs); load average at start ${r.machine.loadavg_at_start}`);
    out.push(`wall: setup ${r.wall_s.setup} s, measurement ${r.wall_s.measurement} s`);
    out.push('slowest cirrus ports (ms from t0: api / agent answered / local route / remote route / reply; probes sent):');
    for (const s of r.slowest_cirrus) {
      out.push(`  #${s.i} ${s.host}->${s.probeHost} ${s.address}: ${f(s.apiDone, 6)} /${f(s.agentAnswered, 6)} /${f(s.localRoute, 6)} /${f(s.remoteRoute, 6)} /${f(s.reply, 7)}; ${s.probesSent}`);
      if (s.trace) {
        const t = s.trace;
        out.push(`      in the workload: first echo request in ${f(t.echoIn, 0)}, its ARP requests out ${t.arpRequestsOut.map((x) => x.toFixed(1)).join(', ') || '-'}, ARP reply in ${f(t.arpReplyIn, 0)}, first echo reply out ${f(t.echoReplyOut, 0)}`);
      }
    }
    const text = out.join('\n');
    if (asJson) {
      process.stderr.write(text + '\n');
      console.log(JSON.stringify(r));
    } else console.log(text);
    return r.unreachable.cirrus === 0 && r.unreachable.baseline === 0;
  }
}

let code = 1;
try {
  code = await main();
} catch (e) {
  if (aborting) code = 130;
  else say(`convergence: ${(e as Error).stack ?? String(e)}`);
} finally {
  const t = now();
  await cleanup();
  say(`clean-up: ${(Number(now() - t) / 1e9).toFixed(1)} s`);
}
process.exit(code);
