// Benchmark of the control node at scale: many simulated agents (no data plane) on a
// configuration of many networks and ports. It measures what the issue asks for: the full
// sync of every agent when all connect at once (as after a control node restart), the
// fan-out latency of a port change to every agent that sees its network, and the control
// node's memory.
//
// The config API (`cirrus api`, the embedded SQLite store) and the control node
// (`cirrus control`) run as processes of their own, so the control node's memory and CPU
// are read from /proc/PID. The agents are WebSocket clients in this process (one Node
// process for all of them; the report gives the CPU it used, to judge whether it kept up).
//
//   node dist/bench/control-scale.js [--agents 200] [--networks 500] [--ports 20000]
//        [--changes 200] [--hosts-per-network 16] [--concurrency 32] [--seed 1] [--json]
//        [--control-node-arg ARG]... [--control-log FILE]

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { type EntryValue, type NetworkEntry, type PortEntry, PROTOCOL_PATH, type RouteEntry, parseControlMessage } from '../src/control/protocol.js';
import { formatIpv4, parseIpv4 } from '../src/util/ipv4.js';
import { prng } from '../test/support/prng.js';
import { cpuSeconds, machineCpuSeconds } from './support/cpu.js';
import { JsonClient, expectOk } from './support/http.js';
import { type CirrusProcess, memoryOf, startCirrus } from './support/process.js';
import { type LatencySummary, Samples } from './support/stats.js';

/** The issue's target. */
const TARGET = { fanOutP99Ms: 100, controlMemoryMiB: 1024 };

const PROJECT = ['default-domain', 'admin'];
const IPAM = [...PROJECT, 'default-network-ipam'];
/** Waiting longer than this for a delta means the control node lost it. */
const DELIVERY_TIMEOUT_MS = 10_000;

interface Options {
  agents: number;
  networks: number;
  ports: number;
  changes: number;
  hostsPerNetwork: number;
  concurrency: number;
  seed: number;
  json: boolean;
  controlNodeArgs: string[];
  controlLog: string | undefined;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string', default: '200' },
      networks: { type: 'string', default: '500' },
      ports: { type: 'string', default: '20000' },
      changes: { type: 'string', default: '200' },
      'hosts-per-network': { type: 'string', default: '16' },
      concurrency: { type: 'string', default: '32' },
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      'control-node-arg': { type: 'string', multiple: true, default: [] },
      'control-log': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: node dist/bench/control-scale.js [--agents N] [--networks N] [--ports N] [--changes N]\n' +
        '         [--hosts-per-network N] [--concurrency C] [--seed S] [--json]\n' +
        '         [--control-node-arg ARG]... [--control-log FILE (all the control node printed)]',
    );
    process.exit(0);
  }
  const count = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: '${text}' is not an integer ≥ ${min}`);
    return n;
  };
  const o: Options = {
    agents: count('agents', values.agents, 1),
    networks: count('networks', values.networks, 1),
    ports: count('ports', values.ports, 1),
    changes: count('changes', values.changes, 0),
    hostsPerNetwork: count('hosts-per-network', values['hosts-per-network'], 1),
    concurrency: count('concurrency', values.concurrency, 1),
    seed: count('seed', values.seed, 0),
    json: values.json,
    controlNodeArgs: values['control-node-arg'],
    controlLog: values['control-log'],
  };
  if (o.hostsPerNetwork > o.agents) throw new Error(`--hosts-per-network ${o.hostsPerNetwork} is more than --agents ${o.agents}`);
  return o;
}

// ---------------------------------------------------------------------------------------
// The configuration the benchmark creates, and the document each host must get from it.

interface HostModel {
  name: string;
  /** Its virtual-router's address (the tunnel endpoint), also the agent's hello. */
  ip: string;
}

interface NetModel {
  name: string;
  uuid: string;
  base: number;
  prefixLen: number;
  /** The hosts its ports are spread over. */
  hosts: number[];
}

interface PortModel {
  net: number;
  host: number;
  vmi: string;
  iip: string;
  address: string;
}

interface Model {
  hosts: HostModel[];
  nets: NetModel[];
  ports: PortModel[];
  /** Per network, the hosts with at least one port in it, and how many. */
  hostsOf: Map<number, Map<number, number>>;
}


/**
 * Each network spans `hostsPerNetwork` distinct hosts drawn from a shuffled deck of all
 * hosts (refilled when empty), so every host is in about the same number of networks and
 * no two networks need share their host set. A network's ports go round-robin over its hosts.
 */
function planLayout(o: Options, rand: () => number): { netHosts: number[][]; portPlan: { net: number; host: number }[]; changePlan: { net: number; hostSlot: number }[] } {
  let deck: number[] = [];
  const draw = (taken: Set<number>): number => {
    for (;;) {
      if (!deck.length) {
        deck = Array.from({ length: o.agents }, (_, i) => i);
        for (let i = deck.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [deck[i], deck[j]] = [deck[j]!, deck[i]!];
        }
      }
      const idx = deck.findIndex((h) => !taken.has(h));
      if (idx >= 0) return deck.splice(idx, 1)[0]!;
      deck = []; // the rest of the deck is all taken: start a fresh one
    }
  };
  const netHosts = Array.from({ length: o.networks }, () => {
    const taken = new Set<number>();
    for (let k = 0; k < o.hostsPerNetwork; k++) taken.add(draw(taken));
    return [...taken];
  });
  const portPlan = Array.from({ length: o.ports }, (_, i) => {
    const net = i % o.networks;
    const hosts = netHosts[net]!;
    return { net, host: hosts[Math.floor(i / o.networks) % hosts.length]! };
  });
  const changePlan = Array.from({ length: o.changes }, () => ({ net: Math.floor(rand() * o.networks), hostSlot: Math.floor(rand() * o.hostsPerNetwork) }));
  return { netHosts, portPlan, changePlan };
}

/** The smallest prefix (at most /24) with room for `addresses` plus network, broadcast, gateway and DNS. */
function prefixFor(addresses: number): number {
  let len = 24;
  while (len > 8 && 2 ** (32 - len) - 4 < addresses) len--;
  return len;
}

function addPort(m: Model, p: PortModel): void {
  m.ports.push(p);
  let hosts = m.hostsOf.get(p.net);
  if (!hosts) m.hostsOf.set(p.net, (hosts = new Map()));
  hosts.set(p.host, (hosts.get(p.host) ?? 0) + 1);
}

/** Compares a host's document with what the configuration says it must be; returns the problems. */
function verifyDocument(m: Model, host: number, doc: ReadonlyMap<string, EntryValue>, portsByNet: Map<number, PortModel[]>): string[] {
  const problems: string[] = [];
  const expected = new Set<string>();
  const name = m.hosts[host]!.name;
  const check = (key: string, ok: (v: EntryValue) => boolean, what: string) => {
    expected.add(key);
    const v = doc.get(key);
    if (v === undefined) problems.push(`${name}: missing ${key} (${what})`);
    else if (!ok(v)) problems.push(`${name}: wrong ${key}: ${JSON.stringify(v)} (${what})`);
  };
  for (const [n, hosts] of m.hostsOf) {
    if (!hosts.has(host)) continue;
    const net = m.nets[n]!;
    const cidr = `${formatIpv4(net.base)}/${net.prefixLen}`;
    check(`n/${net.uuid}`, (v) => {
      const e = v as NetworkEntry;
      return e.uuid === net.uuid && e.name === [...PROJECT, net.name].join(':') && e.subnets.length === 1 && e.subnets[0] === cidr;
    }, `network ${net.name} ${cidr}`);
    for (const p of portsByNet.get(n) ?? []) {
      if (p.host === host) {
        check(`p/${p.vmi}`, (v) => {
          const e = v as PortEntry;
          return e.vmiUuid === p.vmi && e.network === net.uuid && e.address === p.address && e.prefixLen === net.prefixLen && !!e.mac && e.pending === undefined;
        }, `port ${p.address} bound here`);
      } else {
        const vtep = m.hosts[p.host]!.ip;
        check(`r/${net.uuid}/${p.address}`, (v) => {
          const e = v as RouteEntry;
          return e.network === net.uuid && e.address === p.address && e.vtep === vtep;
        }, `port on ${m.hosts[p.host]!.name} via ${vtep}`);
      }
    }
  }
  for (const key of doc.keys()) if (!expected.has(key)) problems.push(`${name}: unexpected ${key}`);
  return problems;
}

function portsByNetwork(m: Model): Map<number, PortModel[]> {
  const out = new Map<number, PortModel[]>();
  for (const p of m.ports) {
    let l = out.get(p.net);
    if (!l) out.set(p.net, (l = []));
    l.push(p);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Simulated agents.

interface Arrival {
  agent: number;
  t: number;
}

class Agents {
  readonly list: SimAgent[] = [];
  /** While recording: key → agents that received it (in a delta) and when. */
  arrivals: Map<string, Arrival[]> | undefined;
  /** Deltas received (by all agents) while recording. */
  deltasSeen = 0;
  private waiter: { pred: () => boolean; resolve: () => void } | undefined;

  /** Resolves when `pred` holds (checked after every delta), or rejects after `ms`. */
  waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`${what}: not within ${ms} ms`));
      }, ms);
      this.waiter = {
        pred,
        resolve: () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        },
      };
    });
  }

  delivered(): void {
    if (this.waiter?.pred()) this.waiter.resolve();
  }

  close(): void {
    for (const a of this.list) a.ws?.terminate();
  }
}

class SimAgent {
  ws: WebSocket | undefined;
  t0 = 0;
  tOpen: number | undefined;
  tSync: number | undefined;
  syncRaw: Buffer | undefined;
  syncBytes = 0;
  syncEntries = 0;
  doc: Map<string, EntryValue> | undefined;
  seq = 0;
  /** Deltas that came before the sync was parsed (the parse is deferred off the clock). */
  early: { t: number; raw: string }[] = [];
  deltaTexts: string[] = [];
  error: string | undefined;

  constructor(
    private readonly all: Agents,
    readonly idx: number,
    readonly host: HostModel,
  ) {}

  connect(url: string, token: string): Promise<void> {
    return new Promise((resolve) => {
      this.t0 = performance.now();
      const ws = new WebSocket(new URL(PROTOCOL_PATH, url), {
        headers: { authorization: `Bearer ${token}` },
        handshakeTimeout: 60_000,
        maxPayload: 512 * 1024 * 1024,
        perMessageDeflate: false,
      });
      this.ws = ws;
      const fail = (why: string) => {
        this.error ??= why;
        resolve();
      };
      ws.on('open', () => {
        this.tOpen = performance.now();
        ws.send(JSON.stringify({ type: 'hello', host: this.host.name, underlayIp: this.host.ip }));
      });
      ws.on('message', (data: WebSocket.RawData) => {
        // Taken first: what follows must not delay the other agents' timestamps.
        const t = performance.now();
        if (this.tSync === undefined) {
          // The first message is the sync (checked when parsed, after the phase).
          this.tSync = t;
          this.syncRaw = data as Buffer;
          this.syncBytes = (data as Buffer).length;
          resolve();
          return;
        }
        const raw = String(data);
        if (!this.doc) this.early.push({ t, raw });
        else this.delta(raw, t);
      });
      ws.on('unexpected-response', (_req, res) => {
        fail(`refused: HTTP ${res.statusCode}`);
        ws.terminate();
      });
      ws.on('error', (e) => fail(`error: ${e.message}`));
      ws.on('close', (code, reason) => {
        fail(`connection closed (${code} ${String(reason)})${this.tSync === undefined ? ' before its sync' : ''}`);
      });
    });
  }

  /** Parses the sync received during the phase (off the clock) and the deltas since. */
  parseSync(): void {
    const msg = parseControlMessage(this.syncRaw!.toString());
    this.syncRaw = undefined;
    if (msg.type !== 'sync') throw new Error(`${this.host.name}: first message is a ${msg.type}, not a sync`);
    this.seq = msg.seq;
    this.syncEntries = msg.entries.length;
    this.doc = new Map(msg.entries);
    for (const e of this.early.splice(0)) this.delta(e.raw, e.t);
  }

  private delta(raw: string, t: number): void {
    let msg: { type?: string; seq?: number; set?: [string, EntryValue][]; del?: string[] };
    try {
      msg = JSON.parse(raw);
    } catch {
      this.error ??= 'a message is not JSON';
      return;
    }
    this.deltaTexts.push(raw); // validated against the protocol's schema after the run
    if (msg.type !== 'delta' || msg.seq !== this.seq + 1) {
      this.error ??= `message ${msg.type} seq ${msg.seq} after seq ${this.seq}: out of order`;
      return;
    }
    this.seq = msg.seq;
    const doc = this.doc!;
    for (const k of msg.del ?? []) doc.delete(k);
    const arrivals = this.all.arrivals;
    if (arrivals) this.all.deltasSeen++;
    for (const [k, v] of msg.set ?? []) {
      doc.set(k, v);
      if (arrivals && (k.startsWith('r/') || (k.startsWith('p/') && (v as PortEntry).address))) {
        let l = arrivals.get(k);
        if (!l) arrivals.set(k, (l = []));
        l.push({ agent: this.idx, t });
      }
    }
    this.all.delivered();
  }
}

// ---------------------------------------------------------------------------------------
// Helpers.

/** Runs `total` jobs with `concurrency` workers, each taking the next job when done. */
async function runWorkers(total: number, concurrency: number, job: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < total) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return (performance.now() - t0) / 1000;
}

/**
 * A GET on a connection of its own: a kept-alive one could be closed by the server (its
 * idle timeout) just as this busy process reuses it.
 */
function get(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 30 s`)));
    req.on('error', reject);
  });
}

interface Histogram {
  buckets: Map<string, number>;
  sum: number;
  count: number;
}

async function scrapeCompute(base: string): Promise<Histogram> {
  const { status, text } = await get(`${base}/metrics`);
  if (status !== 200) throw new Error(`GET ${base}/metrics: HTTP ${status}`);
  const h: Histogram = { buckets: new Map(), sum: 0, count: 0 };
  for (const line of text.split('\n')) {
    let m = /^cirrus_control_compute_seconds_bucket\{le="([^"]+)"\} (\S+)$/.exec(line);
    if (m) h.buckets.set(m[1]!, Number(m[2]));
    else if ((m = /^cirrus_control_compute_seconds_sum (\S+)$/.exec(line))) h.sum = Number(m[1]);
    else if ((m = /^cirrus_control_compute_seconds_count (\S+)$/.exec(line))) h.count = Number(m[1]);
  }
  return h;
}

interface ComputeFigures {
  batches: number;
  meanMs: number;
  /** Upper bound of the histogram bucket holding the 99th percentile ('+Inf' if beyond). */
  p99BucketMs: string;
  /** Batches per bucket, [upper bound in ms, count], this phase only. */
  buckets: [string, number][];
}

function computeBetween(a: Histogram, b: Histogram): ComputeFigures {
  const batches = b.count - a.count;
  const buckets: [string, number][] = [];
  let p99 = '+Inf';
  let prev = 0;
  for (const [le, n] of b.buckets) {
    const cum = n - (a.buckets.get(le) ?? 0);
    const label = le === '+Inf' ? '+Inf' : String(Number(le) * 1000);
    buckets.push([label, cum - prev]);
    prev = cum;
    if (p99 === '+Inf' && batches && cum >= Math.ceil(0.99 * batches)) p99 = label;
  }
  return { batches, meanMs: batches ? ((b.sum - a.sum) / batches) * 1000 : 0, p99BucketMs: p99, buckets };
}

interface Cpu {
  controlSeconds: number | null;
  apiSeconds: number | null;
  benchSeconds: number;
  wallSeconds: number;
  /** Cores busy with everything else on the machine (null off Linux). */
  otherCores: number | null;
}

function cpuMeter(controlPid: number | undefined, apiPid: number): () => Cpu {
  const c0 = controlPid === undefined ? undefined : cpuSeconds(controlPid);
  const a0 = cpuSeconds(apiPid);
  const b0 = process.cpuUsage();
  const m0 = machineCpuSeconds();
  const t0 = performance.now();
  return () => {
    const c1 = controlPid === undefined ? undefined : cpuSeconds(controlPid);
    const a1 = cpuSeconds(apiPid);
    const b = process.cpuUsage(b0);
    const m1 = machineCpuSeconds();
    const wall = (performance.now() - t0) / 1000;
    const control = c0 === undefined || c1 === undefined ? null : c1 - c0;
    const api = a0 === undefined || a1 === undefined ? null : a1 - a0;
    const bench = (b.user + b.system) / 1e6;
    return {
      controlSeconds: control,
      apiSeconds: api,
      benchSeconds: bench,
      wallSeconds: wall,
      otherCores: m0 === undefined || m1 === undefined ? null : Math.max(0, (m1 - m0 - (control ?? 0) - (api ?? 0) - bench) / wall),
    };
  };
}

function countSummary(values: number[]): { min: number; mean: number; p50: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return { min: 0, mean: 0, p50: 0, max: 0 };
  return { min: s[0]!, mean: s.reduce((x, y) => x + y, 0) / s.length, p50: s[Math.ceil(0.5 * s.length) - 1]!, max: s[s.length - 1]! };
}

// ---------------------------------------------------------------------------------------

interface Report {
  agents: number;
  networks: number;
  ports: number;
  changes: number;
  layout: {
    hostsPerNetwork: { min: number; mean: number; max: number };
    portsPerNetwork: { min: number; mean: number; max: number };
    portsPerHost: { min: number; mean: number; max: number };
    networksPerHost: { min: number; mean: number; max: number };
    subnetPrefixLen: number;
  };
  setup: {
    objects: number;
    seconds: number;
    createsPerSecond: number;
    /** From spawning the control node to its configuration caught up with the API's. */
    controlReadySeconds: number;
    /** CPU seconds in that time: the control node's (start, snapshot, routing) and the API's (the snapshot). */
    controlReadyCpu: { control: number | null; api: number | null };
  };
  sync: {
    perAgentMs: LatencySummary;
    handshakeMs: LatencySummary;
    allInSyncMs: number;
    /** Time this process took to create all the connections (before the first goes out). */
    initiatedMs: number;
    entries: { min: number; mean: number; p50: number; max: number };
    bytes: { min: number; mean: number; p50: number; max: number };
    totalMiB: number;
    cpu: Cpu;
    controlCpuMsPerSync: number | null;
  };
  fanOut: {
    interestedAgents: { min: number; mean: number; p50: number; max: number };
    allInterestedMs: LatencySummary;
    firstAgentMs: LatencySummary;
    perDeliveryMs: LatencySummary;
    boundHostPendingMs: LatencySummary;
    baseline: { instanceIpPostMs: LatencySummary; interfacePostMs: LatencySummary };
    ratios: { p50: number; p99: number };
    compute: ComputeFigures;
    /** Per tenth of the changes, in order: a drift over the run shows here. */
    byTenth: { changes: number; allInterestedP50Ms: number; allInterestedMaxMs: number; computeMeanMs: number; computeBatches: number }[];
    deltas: { received: number; expected: number };
    cpu: Cpu;
  };
  memory: {
    control: { afterStartMiB: number | null; afterSyncMiB: number | null; endMiB: number | null; peakMiB: number | null };
    api: { peakMiB: number | null };
  };
  verified: { syncDocuments: number; finalDocuments: number; entriesChecked: number; problems: string[] };
  suspicious: string[];
  target: { fanOutP99Ms: number; controlMemoryMiB: number; met: boolean };
  wallSeconds: number;
  machine: { cpus: number; cpuModel: string; node: string; platform: string; agents: string };
}

async function main(): Promise<void> {
  const wall0 = performance.now();
  const opts = options(process.argv.slice(2));
  const log = (s: string) => process.stderr.write(`[${((performance.now() - wall0) / 1000).toFixed(1).padStart(6)} s] ${s}\n`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-bench-control-'));
  let api: CirrusProcess | undefined;
  let control: CirrusProcess | undefined;
  let client: JsonClient | undefined;
  const agents = new Agents();
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    agents.close();
    client?.close();
    await Promise.all([control?.stop(), api?.stop()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  // An interrupted run still stops its processes and removes its directory.
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const rand = prng(opts.seed);
    const plan = planLayout(opts, rand);
    const perNet = new Map<number, number>();
    for (const p of plan.portPlan) perNet.set(p.net, (perNet.get(p.net) ?? 0) + 1);
    for (const c of plan.changePlan) perNet.set(c.net, (perNet.get(c.net) ?? 0) + 1);
    const prefixLen = prefixFor(Math.max(...perNet.values()));
    if (opts.networks * 2 ** (32 - prefixLen) > 2 ** 24) throw new Error(`${opts.networks} networks of /${prefixLen} do not fit in 10.0.0.0/8`);
    const model: Model = {
      hosts: Array.from({ length: opts.agents }, (_, k) => ({ name: `h${k + 1}`, ip: formatIpv4(parseIpv4('172.16.0.0')! + k + 1) })),
      nets: plan.netHosts.map((hosts, n) => ({ name: `cs-net-${n}`, uuid: '', base: parseIpv4('10.0.0.0')! + n * 2 ** (32 - prefixLen), prefixLen, hosts })),
      ports: [],
      hostsOf: new Map(),
    };

    // 1. The config API.
    api = await startCirrus(['api', '--data', path.join(tmp, 'data'), '--listen', '127.0.0.1:0'], /config API on (http:\/\/\S+)/);
    const apiUrl = api.match[1]!;
    log(`config API pid ${api.pid} on ${apiUrl}`);
    client = new JsonClient(apiUrl, opts.concurrency);
    const c = client;
    const post = async (type: string, body: Record<string, unknown>) => {
      const a = await c.request('POST', `/${type}s`, { [type]: body });
      return { uuid: expectOk(`POST /${type}s`, a)[type].uuid as string, ms: a.ms };
    };

    // 2. Populate through the REST API.
    const objects = opts.agents + opts.networks + 2 * opts.ports;
    log(`populating: ${opts.agents} virtual-routers, ${opts.networks} networks (/${prefixLen}), ${opts.ports} ports (interface + instance-ip), ${opts.concurrency} in flight`);
    const t0 = performance.now();
    await runWorkers(opts.agents, opts.concurrency, async (k) => {
      const h = model.hosts[k]!;
      await post('virtual-router', { fq_name: ['default-global-system-config', h.name], parent_type: 'global-system-config', virtual_router_ip_address: h.ip });
    });
    await runWorkers(opts.networks, opts.concurrency, async (n) => {
      const net = model.nets[n]!;
      net.uuid = (
        await post('virtual-network', {
          fq_name: [...PROJECT, net.name],
          parent_type: 'project',
          network_ipam_refs: [{ to: IPAM, attr: { ipam_subnets: [{ subnet: { ip_prefix: formatIpv4(net.base), ip_prefix_len: net.prefixLen } }] } }],
        })
      ).uuid;
    });
    const created: (PortModel | undefined)[] = new Array(opts.ports);
    const createPort = async (name: string, net: number, host: number) => {
      const uuid = model.nets[net]!.uuid;
      const vmi = await post('virtual-machine-interface', {
        fq_name: [...PROJECT, name],
        parent_type: 'project',
        virtual_network_refs: [{ uuid }],
        virtual_machine_interface_bindings: { key_value_pair: [{ key: 'host_id', value: model.hosts[host]!.name }] },
      });
      return vmi;
    };
    await runWorkers(opts.ports, opts.concurrency, async (i) => {
      const { net, host } = plan.portPlan[i]!;
      const vmi = await createPort(`cs-vmi-${i}`, net, host);
      const iip = await post('instance-ip', { virtual_network_refs: [{ uuid: model.nets[net]!.uuid }], virtual_machine_interface_refs: [{ uuid: vmi.uuid }] });
      created[i] = { net, host, vmi: vmi.uuid, iip: iip.uuid, address: '' };
    });
    const setupSeconds = (performance.now() - t0) / 1000;
    log(`populated in ${setupSeconds.toFixed(1)} s (${(objects / setupSeconds).toFixed(0)} creates/s); reading the allocated addresses`);
    const list = expectOk('GET /instance-ips?detail=True', await c.request('GET', '/instance-ips?detail=True'));
    const addressOf = new Map<string, string>();
    for (const e of list['instance-ips'] as { 'instance-ip': Record<string, any> }[]) addressOf.set(e['instance-ip']['uuid'], e['instance-ip']['instance_ip_address']);
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const p of created) {
      const a = addressOf.get(p!.iip);
      const net = model.nets[p!.net]!;
      const ip = a === undefined ? undefined : parseIpv4(a);
      if (ip === undefined || ip < net.base || ip >= net.base + 2 ** (32 - net.prefixLen)) problems.push(`instance-ip ${p!.iip}: address ${a} not in ${formatIpv4(net.base)}/${net.prefixLen}`);
      else if (seen.has(a!)) problems.push(`address ${a} allocated twice`);
      seen.add(a!);
      p!.address = a!;
      addPort(model, p!);
    }
    if (problems.length) throw new Error(`VERIFICATION FAILED (API): ${problems.slice(0, 5).join('; ')}`);

    // 3. The control node, started on the populated configuration (a restart, as far as it knows).
    const tokenFile = path.join(tmp, 'control.token');
    const token = crypto.randomBytes(32).toString('base64url');
    fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const tc = performance.now();
    const apiCpu0 = cpuSeconds(api.pid);
    control = await startCirrus(
      ['--api', apiUrl, 'control', '--listen', '127.0.0.1:0', '--token-file', tokenFile, '--name', 'bench'],
      /agents on (wss?:\/\/\S+?),/,
      opts.controlNodeArgs,
      30_000,
      opts.controlLog,
    );
    const controlUrl = control.match[1]!;
    const controlHttp = controlUrl.replace(/^ws/, 'http');
    log(`control node pid ${control.pid} on ${controlUrl}; waiting for its configuration`);
    for (;;) {
      if (control.exited()) throw new Error(`the control node exited:\n${control.output()}`);
      const res = await get(`${controlHttp}/healthz`).catch(() => undefined);
      if (res?.status === 200) {
        const rev = (JSON.parse(res.text) as { rev: number }).rev;
        const behind = expectOk('GET /_cirrus/watch', await c.request('GET', `/_cirrus/watch?since=${rev}&timeout=0`));
        if (!(behind['changes'] as unknown[]).length) break;
      }
      if (performance.now() - tc > 120_000) throw new Error('the control node did not take in the configuration within 120 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const controlReadySeconds = (performance.now() - tc) / 1000;
    const apiCpu1 = cpuSeconds(api.pid);
    const controlReadyCpu = { control: cpuSeconds(control.pid) ?? null, api: apiCpu0 === undefined || apiCpu1 === undefined ? null : apiCpu1 - apiCpu0 };
    const memAfterStart = memoryOf(control.pid);
    log(`control node ready in ${controlReadySeconds.toFixed(2)} s, RSS ${memAfterStart?.rssMiB.toFixed(0)} MiB`);

    // 4. Full sync: every agent connects at once.
    log(`sync: ${opts.agents} agents connecting at once`);
    for (let k = 0; k < opts.agents; k++) agents.list.push(new SimAgent(agents, k, model.hosts[k]!));
    const syncCpu = cpuMeter(control.pid, api.pid);
    const ts = performance.now();
    const connected = agents.list.map((a) => a.connect(controlUrl, token));
    const initiatedMs = performance.now() - ts;
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 300_000).unref());
    if ((await Promise.race([Promise.all(connected), deadline])) === 'timeout') throw new Error('not every agent got its sync within 300 s');
    const syncCpuFigures = syncCpu();
    const failed = agents.list.filter((a) => a.error);
    if (failed.length) throw new Error(`${failed.length} agents got no sync; first: ${failed[0]!.host.name}: ${failed[0]!.error}\n${control.output().slice(-2000)}`);
    const allInSyncMs = Math.max(...agents.list.map((a) => a.tSync!)) - ts;
    const memAfterSync = memoryOf(control.pid);
    const syncMs = new Samples(opts.agents);
    const handshakeMs = new Samples(opts.agents);
    for (const a of agents.list) {
      syncMs.add(a.tSync! - a.t0);
      handshakeMs.add(a.tOpen! - a.t0);
    }
    for (const a of agents.list) a.parseSync();
    log(`all ${opts.agents} in sync after ${allInSyncMs.toFixed(0)} ms; control node RSS ${memAfterSync?.rssMiB.toFixed(0)} MiB; verifying the documents`);
    const verifyAll = () => {
      const byNet = portsByNetwork(model);
      const out: string[] = [];
      let entries = 0;
      for (const a of agents.list) {
        if (a.error) out.push(`${a.host.name}: ${a.error}`);
        out.push(...verifyDocument(model, a.idx, a.doc!, byNet));
        entries += a.doc!.size;
      }
      return { problems: out, entries };
    };
    const syncCheck = verifyAll();
    const syncEntries = agents.list.map((a) => a.syncEntries);
    const syncBytes = agents.list.map((a) => a.syncBytes);
    const earlyDeltas = agents.list.reduce((n, a) => n + a.deltaTexts.length, 0);

    // 5. Fan-out: port changes one at a time.
    log(`fan-out: ${opts.changes} new ports, one at a time`);
    const allMs = new Samples(opts.changes);
    const firstMs = new Samples(opts.changes);
    const deliveryMs = new Samples(opts.changes * opts.hostsPerNetwork);
    const pendingMs = new Samples(opts.changes);
    const iipPost = new Samples(opts.changes);
    const vmiPost = new Samples(opts.changes);
    const interestedCounts: number[] = [];
    let expectedDeltas = 0;
    const compute0 = await scrapeCompute(controlHttp);
    const tenth = Math.max(1, Math.ceil(opts.changes / 10));
    const byTenth: Report['fanOut']['byTenth'] = [];
    let tenthStart = compute0;
    let tenthMs = new Samples(tenth);
    const fanCpu = cpuMeter(control.pid, api.pid);
    agents.arrivals = new Map();
    agents.deltasSeen = 0;
    for (let i = 0; i < opts.changes; i++) {
      const change = plan.changePlan[i]!;
      const net = model.nets[change.net]!;
      // A host that already has ports in the network (the usual case: a workload scaled out).
      const withPorts = [...(model.hostsOf.get(change.net)?.keys() ?? [])];
      const host = withPorts.length ? withPorts[change.hostSlot % withPorts.length]! : net.hosts[change.hostSlot % net.hosts.length]!;
      const bound = agents.list[host]!;
      // The interface first: its host gets it as pending (no address yet).
      const tv = performance.now();
      const vmi = await createPort(`cs-change-${i}`, change.net, host);
      vmiPost.add(vmi.ms);
      await agents.waitFor(() => bound.doc!.has(`p/${vmi.uuid}`), DELIVERY_TIMEOUT_MS, `change ${i}: interface ${vmi.uuid} on ${bound.host.name}`);
      pendingMs.add(performance.now() - tv);
      expectedDeltas++;
      // Then the instance-ip: the route exists from here on.
      const t = performance.now();
      const iip = await post('instance-ip', { virtual_network_refs: [{ uuid: net.uuid }], virtual_machine_interface_refs: [{ uuid: vmi.uuid }] });
      iipPost.add(iip.ms);
      const address = expectOk('GET /instance-ip', await c.request('GET', `/instance-ip/${iip.uuid}`))['instance-ip']['instance_ip_address'] as string;
      const port: PortModel = { net: change.net, host, vmi: vmi.uuid, iip: iip.uuid, address };
      addPort(model, port);
      const interested = [...model.hostsOf.get(change.net)!.keys()];
      const want = interested.map((h) => ({ agent: h, key: h === host ? `p/${vmi.uuid}` : `r/${net.uuid}/${address}` }));
      const got = () => want.every((w) => agents.arrivals!.get(w.key)?.some((x) => x.agent === w.agent));
      await agents.waitFor(got, DELIVERY_TIMEOUT_MS, `change ${i}: ${address} in ${net.name} to ${interested.length} agents`).catch((e: Error) => {
        const missing = want.filter((w) => !agents.arrivals!.get(w.key)?.some((x) => x.agent === w.agent)).map((w) => agents.list[w.agent]!.host.name);
        throw new Error(`${e.message}; ${missing.length} never got it (${missing.slice(0, 10).join(', ')})`);
      });
      const times = want.map((w) => agents.arrivals!.get(w.key)!.find((x) => x.agent === w.agent)!.t - t);
      for (const x of times) deliveryMs.add(x);
      allMs.add(Math.max(...times));
      tenthMs.add(Math.max(...times));
      if ((i + 1) % tenth === 0 || i + 1 === opts.changes) {
        const now = await scrapeCompute(controlHttp);
        const cf = computeBetween(tenthStart, now);
        const s = tenthMs.summary();
        byTenth.push({ changes: s.count, allInterestedP50Ms: s.p50, allInterestedMaxMs: s.max, computeMeanMs: cf.meanMs, computeBatches: cf.batches });
        tenthStart = now;
        tenthMs = new Samples(tenth);
      }
      firstMs.add(Math.min(...times));
      interestedCounts.push(interested.length);
      expectedDeltas += interested.length;
      agents.arrivals.clear();
    }
    const fanCpuFigures = fanCpu();
    const receivedDeltas = agents.deltasSeen;
    agents.arrivals = undefined;
    // Anything still in flight (a delta the control node sent late) is counted too.
    await new Promise((r) => setTimeout(r, 200));
    const compute1 = await scrapeCompute(controlHttp);
    const memEnd = memoryOf(control.pid);
    const apiMem = memoryOf(api.pid);

    // 6. Final state: every agent's document, as kept up to date by the deltas, against the configuration.
    log('verifying the documents after the changes');
    const finalCheck = verifyAll();
    const schemaProblems: string[] = [];
    for (const a of agents.list) {
      for (const raw of a.deltaTexts) {
        try {
          parseControlMessage(raw);
        } catch (e) {
          schemaProblems.push(`${a.host.name}: ${(e as Error).message}`);
        }
      }
    }
    const lateDeltas = agents.list.reduce((n, a) => n + a.deltaTexts.length, 0) - earlyDeltas - receivedDeltas;
    const allProblems = [...syncCheck.problems.map((p) => `sync: ${p}`), ...finalCheck.problems.map((p) => `final: ${p}`), ...schemaProblems];

    const suspicious: string[] = [];
    if (earlyDeltas) suspicious.push(`${earlyDeltas} deltas arrived during the sync phase, with no configuration change`);
    if (receivedDeltas + lateDeltas !== expectedDeltas) suspicious.push(`fan-out: ${receivedDeltas + lateDeltas} deltas received, ${expectedDeltas} expected (one per interested agent and change, one for each pending interface)`);
    const benchCores = syncCpuFigures.benchSeconds / syncCpuFigures.wallSeconds;
    if (benchCores > 0.5) suspicious.push(`the agents' process used ${benchCores.toFixed(2)} cores during the sync: it may have slowed the measurement`);
    if (control.exited()) suspicious.push('the control node exited during the run');

    const hostsPerNet = [...model.hostsOf.values()].map((h) => h.size);
    const portsPerHost = new Map<number, number>();
    const netsPerHost = new Map<number, number>();
    for (const hosts of model.hostsOf.values()) {
      for (const [h, n] of hosts) {
        portsPerHost.set(h, (portsPerHost.get(h) ?? 0) + n);
        netsPerHost.set(h, (netsPerHost.get(h) ?? 0) + 1);
      }
    }
    const layoutOf = (v: number[]) => {
      const s = countSummary(v);
      return { min: s.min, mean: s.mean, max: s.max };
    };
    const fan = allMs.summary();
    const base = iipPost.summary();
    const peak = memEnd?.hwmMiB ?? null;
    const report: Report = {
      agents: opts.agents,
      networks: opts.networks,
      ports: opts.ports,
      changes: opts.changes,
      layout: {
        hostsPerNetwork: layoutOf(hostsPerNet),
        portsPerNetwork: layoutOf([...portsByNetwork(model).values()].map((l) => l.length)),
        portsPerHost: layoutOf([...portsPerHost.values()]),
        networksPerHost: layoutOf([...netsPerHost.values()]),
        subnetPrefixLen: prefixLen,
      },
      setup: { objects, seconds: setupSeconds, createsPerSecond: objects / setupSeconds, controlReadySeconds, controlReadyCpu },
      sync: {
        perAgentMs: syncMs.summary(),
        handshakeMs: handshakeMs.summary(),
        allInSyncMs,
        initiatedMs,
        entries: countSummary(syncEntries),
        bytes: countSummary(syncBytes),
        totalMiB: syncBytes.reduce((x, y) => x + y, 0) / 2 ** 20,
        cpu: syncCpuFigures,
        controlCpuMsPerSync: syncCpuFigures.controlSeconds === null ? null : (syncCpuFigures.controlSeconds * 1000) / opts.agents,
      },
      fanOut: {
        interestedAgents: countSummary(interestedCounts),
        allInterestedMs: fan,
        firstAgentMs: firstMs.summary(),
        perDeliveryMs: deliveryMs.summary(),
        boundHostPendingMs: pendingMs.summary(),
        baseline: { instanceIpPostMs: base, interfacePostMs: vmiPost.summary() },
        ratios: { p50: base.p50 ? fan.p50 / base.p50 : 0, p99: base.p99 ? fan.p99 / base.p99 : 0 },
        compute: computeBetween(compute0, compute1),
        byTenth,
        deltas: { received: receivedDeltas + lateDeltas, expected: expectedDeltas },
        cpu: fanCpuFigures,
      },
      memory: {
        control: { afterStartMiB: memAfterStart?.rssMiB ?? null, afterSyncMiB: memAfterSync?.rssMiB ?? null, endMiB: memEnd?.rssMiB ?? null, peakMiB: peak },
        api: { peakMiB: apiMem?.hwmMiB ?? null },
      },
      verified: { syncDocuments: opts.agents, finalDocuments: opts.agents, entriesChecked: syncCheck.entries + finalCheck.entries, problems: allProblems.slice(0, 20) },
      suspicious,
      target: { ...TARGET, met: !allProblems.length && opts.changes > 0 && fan.p99 < TARGET.fanOutP99Ms && peak !== null && peak < TARGET.controlMemoryMiB },
      wallSeconds: (performance.now() - wall0) / 1000,
      machine: {
        cpus: os.availableParallelism(),
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        agents: 'simulated in the benchmark process (ws clients, one Node process), same machine',
      },
    };
    console.log(table(report, allProblems.length));
    if (opts.json) console.log(JSON.stringify(report));
    if (allProblems.length) {
      console.error(`VERIFICATION FAILED: ${allProblems.length} problems; first:\n  ${allProblems.slice(0, 10).join('\n  ')}`);
      process.exitCode = 1;
    }
  } catch (e) {
    // What the servers said is the first thing to look at when a run fails.
    for (const [name, proc] of [['control node', control], ['config API', api]] as const) {
      const out = proc?.output().trim();
      if (out) log(`${name} (pid ${proc!.pid}${proc!.exited() ? `, exited ${proc!.proc.exitCode ?? proc!.proc.signalCode}` : ''}) output, last lines:\n${out.split('\n').slice(-30).join('\n')}`);
    }
    throw e;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function table(r: Report, problems: number): string {
  const f = (n: number | null, digits = 1) => (n === null ? '-' : n.toFixed(digits));
  const row = (name: string, s: LatencySummary) =>
    `  ${name.padEnd(48)}${f(s.p50).padStart(8)}${f(s.p90).padStart(8)}${f(s.p99).padStart(8)}${f(s.max).padStart(9)}`;
  const range = (s: { min: number; mean: number; max: number }, digits = 1) => `${f(s.mean, digits)} (${s.min}–${s.max})`;
  const perWall = (x: number | null, c: Cpu) => f(x === null ? null : x / c.wallSeconds, 2);
  const cores = (c: Cpu) =>
    `cores busy: control node ${perWall(c.controlSeconds, c)} (${f(c.controlSeconds, 2)} s CPU), API ${perWall(c.apiSeconds, c)}, ` +
    `agents' process ${perWall(c.benchSeconds, c)}, rest of the machine ${f(c.otherCores, 2)}`;
  const fo = r.fanOut;
  const buckets = fo.compute.buckets
    .filter(([, n]) => n)
    .map(([le, n]) => `≤${le} ms: ${n}`)
    .join(', ');
  const m = r.memory.control;
  return [
    `Control node at scale: ${r.agents} agents, ${r.networks} networks, ${r.ports} ports, ${r.changes} changes`,
    `machine: ${r.machine.cpus} CPUs (${r.machine.cpuModel}), Node ${r.machine.node}; agents simulated in one Node process on the same machine`,
    `layout: hosts per network ${range(r.layout.hostsPerNetwork)}, ports per network ${range(r.layout.portsPerNetwork)}, ports per host ${range(r.layout.portsPerHost)}, networks per host ${range(r.layout.networksPerHost)}; subnets /${r.layout.subnetPrefixLen}`,
    `setup: ${r.setup.objects} objects through the API in ${f(r.setup.seconds)} s (${f(r.setup.createsPerSecond, 0)}/s); control node ready (snapshot + routing) in ${f(r.setup.controlReadySeconds, 2)} s (CPU: control node ${f(r.setup.controlReadyCpu.control, 2)} s, API ${f(r.setup.controlReadyCpu.api, 2)} s)`,
    '',
    `Full sync, all ${r.agents} agents connecting at once`,
    `  (ms)                                                 p50     p90     p99      max`,
    row('connect → whole sync received, per agent', r.sync.perAgentMs),
    row('connect → WebSocket open', r.sync.handshakeMs),
    `  all ${r.agents} in sync after ${f(r.sync.allInSyncMs, 0)} ms (creating the ${r.agents} connections took this process ${f(r.sync.initiatedMs, 0)} ms)`,
    `  document: ${f(r.sync.entries.mean, 0)} entries (${r.sync.entries.min}–${r.sync.entries.max}), ${f(r.sync.bytes.mean / 1024, 0)} KiB (${f(r.sync.bytes.min / 1024, 0)}–${f(r.sync.bytes.max / 1024, 0)}); ${f(r.sync.totalMiB)} MiB in all`,
    `  ${cores(r.sync.cpu)}; ${f(r.sync.controlCpuMsPerSync, 2)} ms of control node CPU per sync`,
    '',
    `Fan-out: ${r.changes} new ports, one at a time; interested agents per change ${f(fo.interestedAgents.mean)} (${fo.interestedAgents.min}–${fo.interestedAgents.max})`,
    `  (ms)                                                 p50     p90     p99      max`,
    row('instance-ip POST → every interested agent', fo.allInterestedMs),
    row('instance-ip POST → first agent', fo.firstAgentMs),
    row('instance-ip POST → each agent (all deliveries)', fo.perDeliveryMs),
    row('interface POST → bound host has it (pending)', fo.boundHostPendingMs),
    row('baseline: POST /instance-ips round trip', fo.baseline.instanceIpPostMs),
    row('baseline: POST /virtual-machine-interfaces', fo.baseline.interfacePostMs),
    `  every agent ÷ POST round trip: p50 ${f(fo.ratios.p50, 2)}×, p99 ${f(fo.ratios.p99, 2)}×`,
    `  control node compute per change batch (cirrus_control_compute_seconds): ${fo.compute.batches} batches, mean ${f(fo.compute.meanMs, 2)} ms, p99 ≤ ${fo.compute.p99BucketMs} ms (${buckets})`,
    `  by tenth of the changes, every agent p50 / compute mean (ms): ${fo.byTenth.map((t) => `${f(t.allInterestedP50Ms)}/${f(t.computeMeanMs, 2)}`).join(', ')}`,
    `  deltas received ${fo.deltas.received}, expected ${fo.deltas.expected}`,
    `  ${cores(fo.cpu)}`,
    '',
    `Memory, control node (MiB): RSS ${f(m.afterStartMiB, 0)} ready, ${f(m.afterSyncMiB, 0)} after the sync, ${f(m.endMiB, 0)} at the end; peak (VmHWM) ${f(m.peakMiB, 0)}; config API peak ${f(r.memory.api.peakMiB, 0)}`,
    '',
    `verified: ${r.verified.syncDocuments} synced documents and ${r.verified.finalDocuments} documents after the changes against the configuration (${r.verified.entriesChecked} entries): ${problems ? `${problems} PROBLEMS` : 'all exact'}`,
    ...r.suspicious.map((s) => `suspicious: ${s}`),
    `target (every interested agent p99 < ${r.target.fanOutP99Ms} ms, control node peak < ${r.target.controlMemoryMiB} MiB): ${r.target.met ? 'MET' : 'NOT MET'}`,
    `wall time ${f(r.wallSeconds)} s`,
  ].join('\n');
}

main().catch((e: unknown) => {
  const cause = e instanceof Error && e.cause instanceof Error ? ` (${e.cause.message})` : '';
  console.error(`bench failed: ${e instanceof Error ? e.message : String(e)}${cause}`);
  process.exitCode = 1;
});
