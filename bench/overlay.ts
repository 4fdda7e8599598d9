// Cross-host overlay throughput and latency: two workloads of one Cirrus network on two
// hosts of a lab, against a hand-built kernel VXLAN path in the same run.
//
//   node dist/bench/overlay.js [--rounds 3] [--seconds 5] [--pings 200] [--direct-underlay] [--json]   (as root)
//
// Cirrus side: `cirrus lab up --hosts 2`, network red, one workload on h1 and one on h2.
// Baseline (bench/support/baselines.ts, shared with bench/report.ts): two host namespaces
// whose underlay goes through a bridge in a third namespace,
// as the lab's fabric does (the same kind of namespaces), a `vxlan external` device in each
// (the variant of feas_i.sh, the way Cirrus's `cvx` works), `encap ip id 100` routes in a
// per-network table, a `tun_id 100` rule on receive, permanent neighbours, workload MTU
// 1450. --direct-underlay joins the baseline's hosts by one veth instead (no bridge hop: a
// path the lab does not have). Sides alternate (baseline, Cirrus, baseline, ...) and
// medians are reported.

import { type ChildProcess, spawn } from 'node:child_process';
import { run } from '../src/agent/dataplane/kernel.js';
import { CIRRUS, freePort } from '../test/support/server.js';
import { flagNumber, flagSet } from './support/flags.js';
import { must } from './support/exec.js';
import { type DataPath, buildKernelVxlan, deleteNetnsWithPrefix } from './support/baselines.js';

const ROUNDS = flagNumber('--rounds', 3);
const SECONDS = flagNumber('--seconds', 5);
const PINGS = flagNumber('--pings', 200);
const asJson = flagSet('--json');
/** Underlay through a bridge in a third namespace, as the lab's fabric (default), or one veth. */
const fabricBridge = !flagSet('--direct-underlay');

const pid = process.pid;
const lab = `ol${pid}`.slice(0, 12);
const cw = [`ow${pid}a`, `ow${pid}b`] as const;
const bp = `bo${pid}-`;

type Side = DataPath;
interface Sample {
  gbps1: number;
  gbps4: number;
  retr1: number;
  retr4: number;
  rttAvgUs: number;
  rttP99Us: number;
}

async function buildCirrus(env: NodeJS.ProcessEnv, port: number): Promise<Side> {
  await must(process.execPath, [CIRRUS, 'lab', 'up', '--hosts', '2', '--name', lab, '--api-port', String(port)], env);
  await must(process.execPath, [CIRRUS, 'network', 'create', 'red', '--subnet', '10.10.0.0/24'], env);
  const ips = ['10.10.0.11', '10.10.0.12'];
  for (const [i, w] of cw.entries()) {
    await must(process.execPath, [CIRRUS, 'lab', 'workload', 'add', w, '--host', `h${i + 1}`, '--network', 'red', '--ip', ips[i]!, '--name', lab], env);
  }
  return { client: cw[0], server: cw[1], serverIp: ips[1]! };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function iperf(side: Side, streams: number): Promise<{ gbps: number; retr: number }> {
  // A few attempts: the server may still be binding right after it was started.
  for (let attempt = 0; ; attempt++) {
    const r = await run('ip', ['netns', 'exec', side.client, 'iperf3', '-c', side.serverIp, '-t', String(SECONDS), '-P', String(streams), '-J']);
    if (r.code === 0) {
      const d = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } } };
      return { gbps: d.end.sum_received.bits_per_second / 1e9, retr: d.end.sum_sent.retransmits ?? 0 };
    }
    if (attempt >= 10) throw new Error(`iperf3 in ${side.client}: ${r.stdout.slice(0, 300)} ${r.stderr.trim()}`);
    await sleep(200);
  }
}

async function ping(side: Side): Promise<{ avg: number; p99: number }> {
  const r = await run('ip', ['netns', 'exec', side.client, 'ping', '-c', String(PINGS), '-i', '0.01', side.serverIp]);
  const v = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
  if (v.length < PINGS * 0.99) throw new Error(`ping in ${side.client}: ${v.length}/${PINGS} answered`);
  return { avg: v.reduce((s, x) => s + x, 0) / v.length, p99: v[Math.ceil(v.length * 0.99) - 1]! };
}

async function measure(side: Side): Promise<Sample> {
  await must('ip', ['netns', 'exec', side.client, 'ping', '-c', '3', '-i', '0.2', '-W', '1', side.serverIp]);
  let server: ChildProcess | undefined;
  try {
    // `ip netns exec` execs iperf3: this PID is the server's own.
    server = spawn('ip', ['netns', 'exec', side.server, 'iperf3', '-s'], { stdio: 'ignore' });
    await sleep(300);
    const t1 = await iperf(side, 1);
    const t4 = await iperf(side, 4);
    const p = await ping(side);
    return { gbps1: t1.gbps, gbps4: t4.gbps, retr1: t1.retr, retr4: t4.retr, rttAvgUs: p.avg, rttP99Us: p.p99 };
  } finally {
    if (server?.pid !== undefined && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server!.once('exit', r));
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function summarize(samples: Sample[]): Record<keyof Sample, number> {
  const keys: (keyof Sample)[] = ['gbps1', 'gbps4', 'retr1', 'retr4', 'rttAvgUs', 'rttP99Us'];
  return Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k]))])) as Record<keyof Sample, number>;
}

async function main(): Promise<void> {
  const port = await freePort();
  const env = { ...process.env, CIRRUS_API: `http://127.0.0.1:${port}` };
  const base: Sample[] = [];
  const cirrus: Sample[] = [];
  let labTried = false;
  try {
    const b = await buildKernelVxlan(bp, fabricBridge);
    labTried = true; // from here on, `lab down` must run even if `lab up` fails half-way
    const c = await buildCirrus(env, port);
    for (let r = 0; r < ROUNDS; r++) {
      base.push(await measure(b));
      cirrus.push(await measure(c));
      process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
    }
  } finally {
    if (labTried) await run(process.execPath, [CIRRUS, 'lab', 'down', '--name', lab]);
    await deleteNetnsWithPrefix(bp);
  }
  const B = summarize(base);
  const C = summarize(cirrus);
  const ratio = (k: keyof Sample) => Math.round((C[k] / B[k]) * 1000) / 1000;
  const result = {
    rounds: ROUNDS,
    baselineUnderlay: fabricBridge ? 'bridge' : 'veth',
    seconds: SECONDS,
    pings: PINGS,
    baseline: B,
    cirrus: C,
    ratio: { gbps1: ratio('gbps1'), gbps4: ratio('gbps4'), rttAvgUs: ratio('rttAvgUs'), rttP99Us: ratio('rttP99Us') },
    samples: { baseline: base, cirrus },
  };
  const f = (x: number, d = 2) => x.toFixed(d).padStart(8);
  console.log(`medians of ${ROUNDS} alternating rounds (iperf3 ${SECONDS} s, ${PINGS} pings at 10 ms; baseline underlay: ${result.baselineUnderlay})`);
  console.log('                        baseline    cirrus   ratio  target');
  console.log(`TCP 1 stream  Gbit/s   ${f(B.gbps1)}  ${f(C.gbps1)}  ${f(result.ratio.gbps1, 3)}  >= 0.95`);
  console.log(`TCP 4 streams Gbit/s   ${f(B.gbps4)}  ${f(C.gbps4)}  ${f(result.ratio.gbps4, 3)}  >= 0.95`);
  console.log(`ping RTT avg  µs       ${f(B.rttAvgUs, 1)}  ${f(C.rttAvgUs, 1)}  ${f(result.ratio.rttAvgUs, 3)}  <= 1.10`);
  console.log(`ping RTT p99  µs       ${f(B.rttP99Us, 1)}  ${f(C.rttP99Us, 1)}  ${f(result.ratio.rttP99Us, 3)}  <= 1.10`);
  console.log(`retransmits 1/4 str.   ${f(B.retr1, 0)}/${B.retr4}  ${f(C.retr1, 0)}/${C.retr4}`);
  if (asJson) console.log(JSON.stringify(result));
}

await main();
