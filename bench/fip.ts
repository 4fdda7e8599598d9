// An ECMP floating IP against a back end's own address, and how fast a removed back end
// stops taking new connections.
//
//   node dist/bench/fip.js [--rounds 3] [--seconds 5] [--conn-seconds 5] [--concurrency 4]
//       [--failovers 5] [--probe-workers 3] [--probe-interval 1] [--json]          (as root)
//
// One lab (`cirrus lab up --hosts 3 --gateway`). Networks blue (the client, on h1), red (the
// back ends: b1 and b3 on h2, b2 on h3) and svc, whose floating IP 10.96.0.10 has b1, b2 and
// b3 as back ends and 10.96.0.11 b1 alone. One policy, `pass any blue <> svc` and
// `pass any blue <> red`, attached to all three, so that every path passes one policy rule on
// each host:
//
//   direct     client → b1's own address (10.61.0.21): h1's blue chain, the overlay, h2's red chain.
//   spread     client → b1, b2, b3's own addresses in turn (connection figures only): the same
//              servers and hosts as the floating IP's connections, without it.
//   floating   client → 10.96.0.10: h1 sends each new connection to h2 or h3 by the resilient
//              next-hop group (weights 2:1, the back ends there), that host picks a back end
//              (nft, a hash of the 5-tuple) and translates; svc's policy judges it there.
//   nat        client → 10.96.0.11: h1 routes it to h2, which translates it to b1.
//
// All back ends are on other hosts than the client, so every path crosses the overlay once.
// Per round, each figure of every target back to back (the order reverses every round): TCP
// throughput with 1 and 4 streams (iperf 2: each stream is one connection, so the streams of
// one run may land on different back ends; iperf3 cannot go through an ECMP address, its
// control connection and its data streams would be hashed apart), then new TCP connections
// per second (bench/support/connrate.py: connect, read one byte, close with RST), one client
// at a time and --concurrency clients. Medians, and the medians of the rounds' ratios
// floating/direct (the issue's target, ≥ 0.95), floating/spread (what the floating IP itself
// costs) and nat/direct.
//
// Failover (after the rounds): bench/support/fip_prober.py in the client opens new
// connections to the floating IP in a tight loop (--probe-workers threads, --probe-interval
// ms apart, 300 ms connect timeout), each answered with the back end's name. Each time, b3
// is removed from the floating IP (POST /ref-update DELETE): the failover time is from just
// before that call to the start of the last connection that still reached b3 or failed,
// once no connection has done either for a second (target < 300 ms); then b3 is added back
// and the probe waits until it answers again. h2 keeps b1, so h1's group is unchanged: what
// is measured is the API, the control node and h2's agent rewriting its choice. Last, b2 is
// removed once: h3 has no back end left, h1's group loses h3 and h3 forgets svc. (A host
// added back to a group takes only buckets idle for 180 s, so this one is not repeated.)

import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { introspectSocket } from '../src/lab/layout.js';
import { request } from '../src/util/http-client.js';
import { pollUntil } from '../src/util/poll.js';
import { CIRRUS, freePort } from '../test/support/server.js';
import { flagNumber, flagSet } from './support/flags.js';
import { cleanupOnSignals, labDown, must } from './support/exec.js';
import { CONN_PORT, connRate, iperf2 } from './support/measure.js';
import { startIn, stop, stopAll } from './support/netns-children.js';
import { JsonClient, expectOk } from './support/http.js';
import { now } from './support/probes.js';

const ROUNDS = flagNumber('--rounds', 3);
const SECONDS = flagNumber('--seconds', 5);
const CONN_SECONDS = flagNumber('--conn-seconds', 5);
const CONCURRENCY = flagNumber('--concurrency', 4);
const FAILOVERS = flagNumber('--failovers', 5);
const PROBE_WORKERS = flagNumber('--probe-workers', 3);
const PROBE_INTERVAL_MS = flagNumber('--probe-interval', 1);
const PROBE_TIMEOUT_MS = 300;
/** A failover is over once no probe has reached the removed back end, nor failed, for this long. */
const QUIET_MS = 1_000;
const asJson = flagSet('--json');

const SUPPORT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/support');
const CONNRATE = path.join(SUPPORT, 'connrate.py');
const PROBER = path.join(SUPPORT, 'fip_prober.py');

const pid = process.pid;
const lab = `fb${pid}`.slice(0, 12);
const CLIENT = { name: `fw${pid}c`, host: 'h1', network: 'blue', ip: '10.62.0.11' };
const BACKENDS = [
  { key: 'b1', name: `fw${pid}b1`, host: 'h2', network: 'red', ip: '10.61.0.21' },
  { key: 'b2', name: `fw${pid}b2`, host: 'h3', network: 'red', ip: '10.61.0.22' },
  { key: 'b3', name: `fw${pid}b3`, host: 'h2', network: 'red', ip: '10.61.0.23' },
] as const;
const FIP = '10.96.0.10';
/** A floating IP with b1 as its only back end. */
const NAT_FIP = '10.96.0.11';
const NETWORKS = [['blue', '10.62.0.0/24'], ['red', '10.61.0.0/24'], ['svc', '10.96.0.0/24']] as const;
const PROJECT = ['default-domain', 'admin'];
const WHO_PORT = 5400;

const msSince = (t0: bigint, t: bigint = now()): number => Number(t - t0) / 1e6;
const round1 = (x: number) => Math.round(x * 10) / 10;


// ---- the prober ---------------------------------------------------------------------------

interface Report {
  attempts: number;
  errors: number;
  lastError: string | null;
  counts: Record<string, number>;
  last: Record<string, string>;
}

/** fip_prober.py probing the floating IP from the client, asked for reports over stdin. */
class Prober {
  private waiting: ((r: Report) => void)[] = [];

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    readline.createInterface({ input: child.stdout }).on('line', (l) => this.waiting.shift()?.(JSON.parse(l) as Report));
  }

  static async start(): Promise<Prober> {
    const child = await startIn(CLIENT.name, ['python3', PROBER, 'probe', FIP, String(WHO_PORT), String(PROBE_WORKERS), String(PROBE_INTERVAL_MS), String(PROBE_TIMEOUT_MS)], true);
    return new Prober(child);
  }

  /** The attempts started since `t0` (monotonic ns); older ones are forgotten. */
  report(t0: bigint): Promise<Report> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('prober: no report within 5 s')), 5_000);
      this.waiting.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.child.stdin.write(`report ${t0}\n`);
    });
  }

  stop(): Promise<void> {
    return stop(this.child);
  }
}

// ---- the API ------------------------------------------------------------------------------

let api: JsonClient;

const uuidOf = async (type: string, fq: string[]) => expectOk(`${type} ${fq.join(':')}`, await api.request('POST', '/fqname-to-id', { type, fq_name: fq }))['uuid'] as string;

async function backend(op: 'ADD' | 'DELETE', fip: string, vmi: string): Promise<void> {
  expectOk(`ref-update ${op}`, await api.request('POST', '/ref-update', { type: 'floating-ip', uuid: fip, 'ref-type': 'virtual-machine-interface', 'ref-uuid': vmi, operation: op }));
}

// ---- measurements -------------------------------------------------------------------------

interface Target {
  label: 'direct' | 'spread' | 'floating' | 'nat';
  ip: string;
}
/**
 * direct: b1's own address (the issue's baseline); floating: the ECMP address; nat: a
 * floating IP with b1 alone (the translation without the spreading); spread (connection
 * figures only): the three back ends' own addresses in turn, so that the baseline spreads
 * its connections over the same three servers on two hosts as the floating IP does: on one
 * 2-core machine, alternating between server processes costs ~10 % of the sequential rate
 * by itself (wake-ups, cold caches), whatever the address.
 */
const DIRECT: Target = { label: 'direct', ip: BACKENDS[0].ip };
const SPREAD: Target = { label: 'spread', ip: BACKENDS.map((b) => b.ip).join(',') };
const FLOATING: Target = { label: 'floating', ip: FIP };
const NAT: Target = { label: 'nat', ip: NAT_FIP };
const LABELS = ['direct', 'spread', 'floating', 'nat'] as const;

interface Sample {
  gbps1?: number;
  gbps4?: number;
  connSeq?: number;
  connConc?: number;
  connP50Us?: number;
  connP99Us?: number;
  connErrors: number;
}
type Figure = Exclude<keyof Sample, 'connErrors'>;

/**
 * One round: each figure of every target back to back (the order reverses every round), so
 * that a ratio compares samples seconds apart, not a whole round apart: on a shared machine
 * the speed of the path itself drifts over tens of seconds.
 */
async function measureRound(reverse: boolean): Promise<Record<Target['label'], Sample>> {
  const out = Object.fromEntries(LABELS.map((l) => [l, { connErrors: 0 }])) as Record<Target['label'], Sample>;
  const each = async (targets: Target[], fn: (t: Target, s: Sample) => Promise<void>) => {
    for (const t of reverse ? [...targets].reverse() : targets) await fn(t, out[t.label]);
  };
  const throughput = [DIRECT, FLOATING, NAT];
  const connections = [DIRECT, SPREAD, FLOATING, NAT];
  await each(throughput, async (t, s) => void (s.gbps1 = (await iperf2(CLIENT.name, t.ip, 1, SECONDS)).gbps));
  await each(throughput, async (t, s) => void (s.gbps4 = (await iperf2(CLIENT.name, t.ip, 4, SECONDS)).gbps));
  await each(connections, async (t, s) => {
    const seq = await connRate(CLIENT.name, t.ip, CONN_SECONDS, 1);
    Object.assign(s, { connSeq: seq.rate, connP50Us: seq.p50Us, connP99Us: seq.p99Us, connErrors: s.connErrors + seq.errors });
  });
  await each(connections, async (t, s) => {
    const conc = await connRate(CLIENT.name, t.ip, CONN_SECONDS, CONCURRENCY);
    Object.assign(s, { connConc: conc.rate, connErrors: s.connErrors + conc.errors });
  });
  return out;
}

// ---- the agent's passes ------------------------------------------------------------------

interface Passes {
  passes: number;
  ms: number;
  /** Summed per phase (cirrus_agent_reconcile_phase_seconds), ms. */
  phases: Record<string, number>;
}

/** A host's agent's reconcile counters, from its metrics (introspect socket). */
async function passCounters(host: string): Promise<Passes> {
  const r = await request(`unix:${introspectSocket(lab, host)}`, 'GET', '/metrics', undefined, 5_000);
  const value = (re: RegExp) => Number(re.exec(r.text)?.[1] ?? NaN);
  const phases: Record<string, number> = {};
  for (const m of r.text.matchAll(/^cirrus_agent_reconcile_phase_seconds_sum\{phase="(\w+)"\} (\S+)$/gm)) phases[m[1]!] = Number(m[2]) * 1000;
  return { passes: value(/^cirrus_agent_reconcile_duration_seconds_count (\S+)$/m), ms: value(/^cirrus_agent_reconcile_duration_seconds_sum (\S+)$/m) * 1000, phases };
}

const passesSince = (a: Passes, b: Passes): Passes => ({
  passes: b.passes - a.passes,
  ms: round1(b.ms - a.ms),
  phases: Object.fromEntries(Object.entries(b.phases).map(([k, v]) => [k, round1(v - (a.phases[k] ?? 0))])),
});

const describePasses = (p: Passes) => `${p.passes} pass${p.passes === 1 ? '' : 'es'}, ${p.ms} ms (${Object.entries(p.phases).map(([k, v]) => `${k} ${v}`).join(', ')})`;

interface Failover {
  /** From just before the API call to the start of the last probe that reached the removed back end or failed. */
  ms: number;
  /** The passes of the back end's host's agent meanwhile (until the failover was over). */
  passes?: Passes;
  lastChosenMs: number | null;
  lastErrorMs: number | null;
  /** The API call itself. */
  apiMs: number;
  attempts: number;
  errors: number;
  /** After adding it back: until it answered again (not measured for the last, one-off removal). */
  backMs?: number;
}

/** Waits until every back end in `keys` answered and no probe failed over the last QUIET_MS. */
async function settled(prober: Prober, keys: string[]): Promise<void> {
  await pollUntil(
    `probes answered by ${keys.join(', ')} without errors for ${QUIET_MS} ms`,
    async () => {
      const r = await prober.report(now() - BigInt(QUIET_MS) * 1_000_000n);
      return r.errors === 0 && keys.every((k) => (r.counts[k] ?? 0) > 0) ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}

/** Removes back end `key` and waits until nothing has reached it, nor failed, for QUIET_MS. */
async function failover(prober: Prober, fip: string, vmi: string, key: string): Promise<Failover> {
  const t0 = now();
  await backend('DELETE', fip, vmi);
  const apiMs = msSince(t0);
  return pollUntil(
    `${key} no longer chosen`,
    async () => {
      const r = await prober.report(t0);
      const chosen = r.last[key] !== undefined ? BigInt(r.last[key]) : undefined;
      const failed = r.lastError !== null ? BigInt(r.lastError) : undefined;
      const lastBad = [chosen, failed].reduce<bigint>((m, x) => (x !== undefined && x > m ? x : m), t0);
      if (msSince(lastBad) < QUIET_MS) return undefined;
      const rel = (x: bigint | undefined) => (x === undefined ? null : round1(msSince(t0, x)));
      return { ms: round1(msSince(t0, lastBad)), lastChosenMs: rel(chosen), lastErrorMs: rel(failed), apiMs: round1(apiMs), attempts: r.attempts, errors: r.errors };
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

// ---- summary ------------------------------------------------------------------------------

const median = (xs: number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Each figure's median over the rounds (figures a target does not have stay out). */
function summarize(samples: Sample[]): Sample {
  const keys = Object.keys(samples[0]!) as (keyof Sample)[];
  return Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k]!))])) as unknown as Sample;
}

// ---- main ---------------------------------------------------------------------------------

let cleaned: Promise<void> | undefined;
let labTried = false;

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    api?.close();
    await stopAll();
    if (labTried) {
      await labDown(CIRRUS, lab);
    }
  })();
  return cleaned;
}

cleanupOnSignals(cleanup);

async function main(): Promise<void> {
  const started = Date.now();
  const log = (s: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${s}\n`);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, CIRRUS_API: base };
  const cirrus = (...args: string[]) => must(process.execPath, [CIRRUS, ...args], env);
  const samples = Object.fromEntries(LABELS.map((l) => [l, []])) as unknown as Record<Target['label'], Sample[]>;
  const failovers: Failover[] = [];
  let hostLeaves: Failover | undefined;
  try {
    labTried = true; // from here on `lab down` runs, even if `lab up` fails half-way
    log(`lab ${lab} up`);
    await cirrus('lab', 'up', '--hosts', '3', '--gateway', '--name', lab, '--api-port', String(port));
    for (const [n, cidr] of NETWORKS) await cirrus('network', 'create', n, '--subnet', cidr);
    await cirrus('policy', 'create', 'blue-to-both', '--rule', 'pass any blue <> svc', '--rule', 'pass any blue <> red');
    for (const [n] of NETWORKS) await cirrus('policy', 'attach', 'blue-to-both', '--network', n);
    for (const w of [CLIENT, ...BACKENDS]) await cirrus('lab', 'workload', 'add', w.name, '--host', w.host, '--network', w.network, '--ip', w.ip, '--name', lab);
    await cirrus('fip', 'create', '--pool', 'svc', '--ip', FIP, '--port', ...BACKENDS.map((b) => b.name));
    await cirrus('fip', 'create', '--pool', 'svc', '--ip', NAT_FIP, '--port', BACKENDS[0].name);
    api = new JsonClient(base, 2);
    const fipUuid = await uuidOf('floating-ip', [...PROJECT, 'svc', 'default', `fip-${FIP}`]);
    const vmis = Object.fromEntries(await Promise.all(BACKENDS.map(async (b) => [b.key, await uuidOf('virtual-machine-interface', [...PROJECT, `${b.name}-eth0`])] as const)));

    for (const b of BACKENDS) {
      await startIn(b.name, ['iperf', '-s', '-B', b.ip], false);
      await startIn(b.name, ['python3', CONNRATE, 'server', b.ip, String(CONN_PORT), '2'], true);
      await startIn(b.name, ['python3', PROBER, 'serve', b.ip, String(WHO_PORT), b.key], true);
    }
    // Ready: both targets answer, and the floating IP's connections reach all three back ends.
    let prober = await Prober.start();
    await settled(prober, BACKENDS.map((b) => b.key));
    await prober.stop();
    await must('ip', ['netns', 'exec', CLIENT.name, 'ping', '-c', '3', '-i', '0.2', '-W', '1', BACKENDS[0].ip]);

    for (let r = 0; r < ROUNDS; r++) {
      const round = await measureRound(r % 2 === 1);
      for (const l of LABELS) {
        const x = round[l];
        samples[l].push(x);
        const gbit = x.gbps1 === undefined ? '' : `${x.gbps1.toFixed(2)} / ${x.gbps4!.toFixed(2)} Gbit/s (1/4 streams), `;
        log(`round ${r + 1}/${ROUNDS} ${l}: ${gbit}${x.connSeq!.toFixed(0)} / ${x.connConc!.toFixed(0)} conn/s (1/${CONCURRENCY} clients), ${x.connErrors} errors`);
      }
    }

    prober = await Prober.start();
    for (let i = 0; i < FAILOVERS; i++) {
      await settled(prober, ['b1', 'b2', 'b3']);
      const before = await passCounters('h2');
      const f = await failover(prober, fipUuid, vmis['b3']!, 'b3');
      f.passes = passesSince(before, await passCounters('h2'));
      const t1 = now();
      await backend('ADD', fipUuid, vmis['b3']!);
      await pollUntil('b3 answering again', async () => ((await prober.report(t1)).counts['b3'] ? true : undefined), { timeoutMs: 20_000, intervalMs: 20 });
      f.backMs = round1(msSince(t1));
      failovers.push(f);
      log(`failover ${i + 1}/${FAILOVERS}: b3 last reached ${f.lastChosenMs ?? '-'} ms, last failure ${f.lastErrorMs ?? '-'} ms after the call (API ${f.apiMs} ms, ${f.attempts} probes, ${f.errors} failed); back in ${f.backMs} ms; h2's agent: ${describePasses(f.passes!)}`);
    }
    await settled(prober, ['b1', 'b2', 'b3']);
    hostLeaves = await failover(prober, fipUuid, vmis['b2']!, 'b2');
    log(`h3 leaves: b2 last reached ${hostLeaves.lastChosenMs ?? '-'} ms, last failure ${hostLeaves.lastErrorMs ?? '-'} ms after the call`);
    await prober.stop();
  } finally {
    await cleanup();
  }

  const med = Object.fromEntries(LABELS.map((l) => [l, summarize(samples[l])])) as Record<Target['label'], Sample>;
  // The median of the rounds' ratios (each of two samples taken seconds apart).
  const ratio = (num: Target['label'], den: Target['label'], k: Figure) => Math.round(median(samples[num].map((x, i) => x[k]! / samples[den][i]![k]!)) * 1000) / 1000;
  const ratios = (num: Target['label'], den: Target['label'], ks: Figure[]) => Object.fromEntries(ks.map((k) => [k, ratio(num, den, k)])) as Partial<Record<Figure, number>>;
  const ALL: Figure[] = ['gbps1', 'gbps4', 'connSeq', 'connConc'];
  const TARGET_RATIO = 0.95;
  const TARGET_FAILOVER_MS = 300;
  const fo = {
    medianMs: round1(median(failovers.map((f) => f.ms))),
    maxMs: Math.max(...failovers.map((f) => f.ms)),
    medianApiMs: round1(median(failovers.map((f) => f.apiMs))),
    medianBackMs: round1(median(failovers.map((f) => f.backMs!))),
  };
  const result = {
    rounds: ROUNDS,
    iperfSeconds: SECONDS,
    connSeconds: CONN_SECONDS,
    concurrency: CONCURRENCY,
    probe: { workers: PROBE_WORKERS, intervalMs: PROBE_INTERVAL_MS, timeoutMs: PROBE_TIMEOUT_MS, quietMs: QUIET_MS },
    medians: med,
    ratio: {
      floatingToDirect: ratios('floating', 'direct', ALL),
      floatingToSpread: ratios('floating', 'spread', ['connSeq', 'connConc']),
      natToDirect: ratios('nat', 'direct', ALL),
    },
    failover: fo,
    hostLeaves,
    targets: { ratio: TARGET_RATIO, failoverMs: TARGET_FAILOVER_MS },
    wallSeconds: Math.round((Date.now() - started) / 1000),
    samples,
    failovers,
  };
  const f = (x: number | undefined, d = 2, w = 9) => (x === undefined ? '-' : x.toFixed(d)).padStart(w);
  const R = result.ratio;
  console.log(`medians of ${ROUNDS} rounds (each figure of every target back to back, order reversing each round; a ratio is the median of the rounds' ratios); iperf 2 ${SECONDS} s; new connections ${CONN_SECONDS} s each`);
  console.log(`direct: b1's own address; spread: b1, b2, b3's own addresses in turn; floating: ${FIP} (ECMP over b1, b2, b3); nat: ${NAT_FIP} (b1 alone)`);
  console.log('                            direct    spread  floating       nat   fl/dir  fl/spr  nat/dir  target');
  const row = (name: string, k: Figure, d: number) =>
    console.log(`${name.padEnd(24)}${LABELS.map((l) => f(med[l][k], d, 10)).join('')} ${f(R.floatingToDirect[k], 3, 8)}${f(R.floatingToSpread[k], 3, 8)}${f(R.natToDirect[k], 3, 9)}  >= ${TARGET_RATIO}`);
  row('TCP 1 stream   Gbit/s', 'gbps1', 2);
  row('TCP 4 streams  Gbit/s', 'gbps4', 2);
  row('new conn/s, 1 client', 'connSeq', 0);
  row(`new conn/s, ${CONCURRENCY} clients`, 'connConc', 0);
  console.log(`${'connect p50 µs, 1 client'.padEnd(24)}${LABELS.map((l) => f(med[l].connP50Us, 0, 10)).join('')}`);
  console.log(`${'connect p99 µs, 1 client'.padEnd(24)}${LABELS.map((l) => f(med[l].connP99Us, 0, 10)).join('')}`);
  console.log(`failover, b3 removed (${failovers.length}×): median ${fo.medianMs} ms, max ${fo.maxMs} ms (target < ${TARGET_FAILOVER_MS} ms); API call ${fo.medianApiMs} ms; added back: answers after ${fo.medianBackMs} ms`);
  console.log(`  per run (ms): ${failovers.map((x) => x.ms).join(', ')}`);
  if (hostLeaves) console.log(`failover, b2 removed (h3 leaves the group, once): ${hostLeaves.ms} ms (last reached ${hostLeaves.lastChosenMs ?? '-'}, last failure ${hostLeaves.lastErrorMs ?? '-'}; ${hostLeaves.errors} of ${hostLeaves.attempts} probes failed)`);
  console.log(`wall time ${result.wallSeconds} s`);
  if (asJson) console.log(JSON.stringify(result));
}

await main();
