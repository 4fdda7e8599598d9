// Data-path measurements between two namespaces, with the tools named in the report:
// iperf3 (TCP throughput), iperf 2 (throughput as independent connections), ping (RTT),
// bench/support/connrate.py (new TCP connections per second). Servers are long-lived
// children stopped by PID (`ip netns exec` execs them, so the PIDs are theirs).

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/agent/dataplane/kernel.js';
import { stopChild } from './exec.js';

const CONNRATE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/support/connrate.py');
export const CONN_PORT = 5300;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The servers a measured path needs in its server namespace: iperf3, iperf 2, connrate. */
export class Servers {
  private readonly children: ChildProcessWithoutNullStreams[] = [];

  private start(netns: string, argv: string[]): ChildProcessWithoutNullStreams {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.on('data', () => {}); // drained: a full pipe would stall a server that prints every test
    child.stderr.on('data', () => {});
    child.stdin.on('error', () => undefined);
    this.children.push(child);
    return child;
  }

  /** iperf3 -s, iperf -s and connrate's server in `netns` (waits until connrate says ready). */
  async startIn(netns: string): Promise<void> {
    this.start(netns, ['iperf3', '-s']);
    this.start(netns, ['iperf', '-s']);
    const c = this.start(netns, ['python3', CONNRATE, 'server', '0.0.0.0', String(CONN_PORT), '2']);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connrate server in ${netns}: not ready after 10 s`)), 10_000);
      c.stdout.on('data', (b: Buffer) => {
        if (b.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`connrate server in ${netns} exited (${code})`));
      });
    });
  }

  async stop(): Promise<void> {
    for (const c of this.children.splice(0)) await stopChild(c);
  }
}

export interface Throughput {
  gbps: number;
  retransmits: number;
}

/** iperf3 -c for `seconds` with `streams` parallel streams; retried while the server is still binding. */
export async function iperf3(client: string, serverIp: string, streams: number, seconds: number): Promise<Throughput> {
  for (let attempt = 0; ; attempt++) {
    const r = await run('ip', ['netns', 'exec', client, 'iperf3', '-c', serverIp, '-t', String(seconds), '-P', String(streams), '-J']);
    if (r.code === 0) {
      const d = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } } };
      return { gbps: d.end.sum_received.bits_per_second / 1e9, retransmits: d.end.sum_sent.retransmits ?? 0 };
    }
    if (attempt >= 10) throw new Error(`iperf3 in ${client} to ${serverIp}: ${r.stdout.slice(0, 300)} ${r.stderr.trim()}`);
    await sleep(300);
  }
}

/**
 * Sum of the per-connection rates in iperf 2's CSV report (`-y C`), Gbit/s. Lines are
 * `time,src,sport,dst,dport,id,interval,bytes,bits_per_second`; a sum line (id -1), when
 * there is one, is left out.
 */
export function parseIperf2Csv(text: string): { gbps: number; connections: number } {
  let bps = 0;
  let connections = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(',');
    if (f.length < 9 || f[5] === '-1') continue;
    const v = Number(f[8]);
    if (!Number.isFinite(v)) continue;
    bps += v;
    connections++;
  }
  return { gbps: bps / 1e9, connections };
}

/**
 * iperf 2 (`iperf -c -P N`): every stream is a TCP connection of its own, with no control
 * connection that the streams must meet on one server. Through an ECMP address each
 * connection may land on another back end, which iperf3 cannot do.
 */
export async function iperf2(client: string, serverIp: string, streams: number, seconds: number): Promise<Throughput> {
  for (let attempt = 0; ; attempt++) {
    const r = await run('ip', ['netns', 'exec', client, 'iperf', '-c', serverIp, '-t', String(seconds), '-P', String(streams), '-y', 'C']);
    const p = parseIperf2Csv(r.stdout);
    if (r.code === 0 && p.connections === streams) return { gbps: p.gbps, retransmits: 0 };
    if (attempt >= 10) throw new Error(`iperf in ${client} to ${serverIp}: ${p.connections}/${streams} streams reported: ${r.stdout.slice(0, 300)} ${r.stderr.trim()}`);
    await sleep(300);
  }
}

/** `count` ICMP echo RTTs in µs, one every `intervalMs` (≥ 2 ms, ping's floor as root); throws when fewer than 99% answered. */
export async function pingRtts(client: string, serverIp: string, count: number, intervalMs: number): Promise<number[]> {
  const r = await run('ip', ['netns', 'exec', client, 'ping', '-c', String(count), '-i', String(intervalMs / 1000), '-W', '1', serverIp]);
  const v = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
  if (v.length < count * 0.99) throw new Error(`ping in ${client} to ${serverIp}: ${v.length}/${count} answered`);
  return v;
}

export interface ConnRate {
  /** Connections made in the run. */
  connections: number;
  rate: number;
  errors: number;
  p50Us: number;
  p99Us: number;
}

/** New TCP connections per second from `concurrency` clients for `seconds` (connect, one byte, close). */
export async function connRate(client: string, serverIp: string, seconds: number, concurrency: number): Promise<ConnRate> {
  const r = await run('ip', ['netns', 'exec', client, 'python3', CONNRATE, 'client', serverIp, String(CONN_PORT), String(seconds), String(concurrency)]);
  if (r.code !== 0) throw new Error(`connrate client in ${client}: ${r.stderr.trim()}`);
  const d = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { connections: number; rate: number; errors: number; p50_us: number; p99_us: number };
  return { connections: d.connections, rate: d.rate, errors: d.errors, p50Us: d.p50_us, p99Us: d.p99_us };
}
