// Flow analytics figures (docs/benchmarks.md, "Flow analytics"):
//  1. collector ingest: synthetic samples (time-ordered over the last hour, skewed talkers)
//     shipped by the agents' own sender (FlowShipper) over the real channel to a real
//     `bin/cirrus collector` process; samples acknowledged (durable) per second, and the
//     collector's CPU per million samples;
//  2. the query: top-10 talkers (source addresses) by bytes over the last hour, through
//     POST /analytics/query, first run and the median of the next five;
//  3. bytes per sample on disk: the whole store (closed windows in Parquet and the staged
//     last minutes in DuckDB), and the Parquet windows alone;
//  4. the agent's CPU per 1,000 new flows/s: a 1-host lab, connections between two
//     workloads (bench/support/connrate.py), the agent and its children (conntrack, the
//     NFLOG reader) against the same time idle; and of that, its main thread's (reconcile
//     passes, port API, control channel: the flow pipeline runs in a worker thread).
// Flags: --samples N (10,000,000), --seconds S (agent run, 20), --skip-agent, --skip-collector (1-3).

import fs from 'node:fs';
import path from 'node:path';
import { FlowShipper } from '../src/analytics/shipper.js';
import { pollUntil } from '../src/util/poll.js';
import { startCollectorProcess } from '../test/support/collector.js';
import { syntheticFlows } from '../test/support/flows.js';
import { TestLab } from '../test/support/lab.js';
import { call, freePort, tempDataDir } from '../test/support/server.js';
import { cpuSeconds } from './support/cpu.js';
import { must, stopChild } from './support/exec.js';
import { flagNumber, flagSet } from './support/flags.js';
import { spawn } from 'node:child_process';

const SAMPLES = flagNumber('--samples', 10_000_000);
const SECONDS = flagNumber('--seconds', 20);
const CHUNK = 50_000;

async function collectorFigures(): Promise<void> {
  const dir = tempDataDir();
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'bench\n');
  const collector = await startCollectorProcess(path.join(dir, 'store'), await freePort(), tokenFile);
  const shipper = new FlowShipper({ url: collector.url.replace('http', 'ws'), token: 'bench', host: 'bench', maxBuffered: 2 * CHUNK, window: 8 });
  shipper.start();
  try {
    const now = Date.now();
    const gen = syntheticFlows({ seed: 42, startMs: now - 3_600_000, endMs: now, ordered: SAMPLES, hosts: 32, networks: 16 });
    const cpu0 = cpuSeconds(collector.proc.pid!)!;
    const t0 = performance.now();
    for (let sent = 0; sent < SAMPLES; sent += CHUNK) {
      // Keep at most two chunks buffered: the sender's pace is the collector's.
      while (shipper.stats.buffered > CHUNK) await new Promise((r) => setTimeout(r, 2));
      shipper.push(gen(Math.min(CHUNK, SAMPLES - sent)));
    }
    await shipper.drained();
    const secs = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(collector.proc.pid!)! - cpu0;
    console.log(`ingest: ${SAMPLES} samples in ${secs.toFixed(1)} s = ${Math.round(SAMPLES / secs)} samples/s; collector CPU ${((cpu / SAMPLES) * 1e6).toFixed(2)} s per million`);
    // The collector moves closed windows to Parquet on its own (every 15 s): wait for the steady state.
    const health = await pollUntil(
      'closed windows moved',
      async () => {
        const h = (await call(collector.url, 'GET', '/healthz')).body as { records: number; bytes: number; files: number; staged: number };
        return h.records === SAMPLES && h.staged <= SAMPLES / 6 + 1 ? h : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    const windows = path.join(dir, 'store', 'windows');
    const parquet = fs.readdirSync(windows).reduce((s, f) => s + fs.statSync(path.join(windows, f)).size, 0);
    console.log(`disk: ${(health.bytes / health.records).toFixed(1)} bytes/sample for the whole store (${health.files} Parquet windows, ${health.staged} samples staged); Parquet alone ${(parquet / (health.records - health.staged)).toFixed(1)} bytes/sample`);
    const top = { table: 'FlowSeriesTable', start_time: 'now-1h', end_time: 'now', select_fields: ['sourceip', 'sum(bytes)'], sort: 2, sort_fields: ['sum(bytes)'], limit: 10 };
    const times: number[] = [];
    let answer: unknown;
    for (let i = 0; i < 6; i++) {
      const q0 = performance.now();
      const r = await call(collector.url, 'POST', '/analytics/query', top);
      times.push(performance.now() - q0);
      if (r.status !== 200) throw new Error(r.text);
      answer = r.body.value[0];
    }
    const warm = times.slice(1).sort((a, b) => a - b)[2]!;
    console.log(`top-10 talkers by bytes over the last hour (${SAMPLES} samples): first ${times[0]!.toFixed(0)} ms, then median ${warm.toFixed(0)} ms; top: ${JSON.stringify(answer)}`);
  } finally {
    shipper.stop();
    await collector.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU seconds of a process and all its descendants, including children already reaped. */
function treeCpu(pid: number): number {
  let total = 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      const kids = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const k of kids ? kids.split(' ') : []) total += treeCpu(Number(k));
    }
  } catch {
    // gone meanwhile
  }
  return total;
}

/** CPU seconds of a process's main thread alone. */
function mainThreadCpu(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function agentFigures(): Promise<void> {
  const lab = new TestLab('anb');
  try {
    await lab.up(1);
    await lab.cirrus('network', 'create', 'bench', '--subnet', '10.61.0.0/24');
    await lab.add('a', 'h1', 'bench', '10.61.0.11');
    await lab.add('b', 'h1', 'bench', '10.61.0.12');
    const state = JSON.parse(fs.readFileSync(`/run/cirrus/lab/${lab.name}/lab.json`, 'utf8')) as { hosts: { agent: { pid: number } }[] };
    const agent = state.hosts[0]!.agent.pid;
    const connrate = path.join(path.dirname(new URL(import.meta.url).pathname), '../../bench/support/connrate.py');
    const server = spawn('ip', ['netns', 'exec', lab.w('b'), 'python3', connrate, 'server', '10.61.0.12', '7000', '2'], { stdio: 'ignore' });
    try {
      const idle0 = treeCpu(agent);
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      const idle = treeCpu(agent) - idle0;
      const busy0 = treeCpu(agent);
      const main0 = mainThreadCpu(agent);
      const out = await must('ip', ['netns', 'exec', lab.w('a'), 'python3', connrate, 'client', '10.61.0.12', '7000', String(SECONDS), '4']);
      // Flows of the run still end (DESTROY) and are read afterwards: count until the agent is idle again.
      await new Promise((r) => setTimeout(r, 15_000));
      const busy = treeCpu(agent) - busy0 - (idle * 15) / SECONDS;
      const main = mainThreadCpu(agent) - main0;
      const { rate, connections } = JSON.parse(out) as { rate: number; connections: number };
      const perK = ((busy - idle) / SECONDS / (rate / 1000)) * 100;
      // A cost is only a cost of the work done: how many of the connections became flow records.
      const counted = await call(lab.analytics, 'POST', '/analytics/query', { table: 'FlowSeriesTable', start_time: 'now-10m', end_time: 'now', select_fields: ['flow_count'], where: [[{ name: 'dport', value: 7000, op: 1 }]] });
      const recorded = Number((counted.body.value as { flow_count: number }[])[0]?.flow_count ?? 0);
      console.log(`agent: ${Math.round(rate)} new flows/s for ${SECONDS} s, ${recorded} of ${connections} recorded; agent and children ${(busy / SECONDS * 100).toFixed(1)}% of a core (idle ${(idle / SECONDS * 100).toFixed(1)}%): ${perK.toFixed(1)}% of a core per 1,000 new flows/s; main thread ${(main / (SECONDS + 15) * 100).toFixed(1)}% of a core over the run and the 15 s after; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    } finally {
      await stopChild(server);
    }
  } finally {
    await lab.down();
  }
}

if (!flagSet('--skip-collector')) await collectorFigures();
if (!flagSet('--skip-agent')) await agentFigures();
