// Long-lived helpers of bench/convergence.ts, each a child process started by this
// benchmark and stopped by its PID:
//
// - Prober: bench/support/icmp_prober.py inside a workload's namespace (`ip netns exec`
//   execs python3, so the child's PID is the prober's own). One process for the whole run:
//   no process start inside a measurement.
// - RouteMonitor: `ip -o -n NS monitor route` in a host's namespace, recording when each
//   /32 route first appears (local: `ADDR dev IF`, remote: `ADDR encap ip ...`).
//
// Every time is CLOCK_MONOTONIC in ns: node's process.hrtime.bigint() (libuv's uv_hrtime)
// and python's time.monotonic_ns() read the same kernel clock, and network namespaces do
// not change it (no time namespace is involved), so times from both compare directly.
// Prober.clockCheck() verifies that at start.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stopChild } from './exec.js';

export const now = (): bigint => process.hrtime.bigint();

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/support/icmp_prober.py');

export interface ProbeReply {
  /** Kernel receive time of the first echo reply (monotonic ns). */
  recv: bigint;
  /** When the prober read it. */
  user: bigint;
  /** Echo requests sent until then. */
  sent: number;
  /** When the answered request was sent. */
  seqSent: bigint;
}

export interface Probe {
  /** Resolves once the first request is sent, with its time. */
  armed: Promise<bigint>;
  /** The first reply, or undefined on timeout or cancel. */
  result: Promise<ProbeReply | undefined>;
  cancel(): void;
}


export class Prober {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting = new Map<string, { armed?: (t: bigint) => void; done: (r: ProbeReply | undefined) => void }>();
  private clockWaiter: ((t: bigint) => void) | undefined;
  private next = 0;
  private stderr = '';

  constructor(readonly netns: string) {
    this.child = spawn('ip', ['netns', 'exec', netns, 'python3', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (b: Buffer) => (this.stderr = (this.stderr + b.toString()).slice(-2000)));
    this.child.stdin.on('error', () => undefined);
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => this.onLine(line));
    this.child.on('exit', () => {
      for (const w of this.waiting.values()) w.done(undefined);
      this.waiting.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get errors(): string {
    return this.stderr.trim();
  }

  private onLine(line: string): void {
    const w = line.split(' ');
    if (w[0] === 'clock') return this.clockWaiter?.(BigInt(w[1]!));
    const entry = this.waiting.get(w[1] ?? '');
    if (!entry) return;
    if (w[0] === 'armed') entry.armed?.(BigInt(w[2]!));
    else if (w[0] === 'reply') {
      this.waiting.delete(w[1]!);
      entry.done({ recv: BigInt(w[2]!), user: BigInt(w[3]!), sent: Number(w[4]), seqSent: BigInt(w[6]!) });
    } else if (w[0] === 'timeout') {
      this.waiting.delete(w[1]!);
      entry.done(undefined);
    }
  }

  /**
   * The prober's clock read between two of ours: before <= theirs <= after if both are
   * the same clock. Returns the bracket (ns); throws if the clocks disagree.
   */
  async clockCheck(timeoutMs = 10_000): Promise<bigint> {
    const before = now();
    const theirs = await new Promise<bigint>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`prober in ${this.netns} did not answer: ${this.errors}`)), timeoutMs);
      this.clockWaiter = (t) => {
        clearTimeout(timer);
        resolve(t);
      };
      this.child.stdin.write('clock\n');
    });
    const after = now();
    if (theirs < before || theirs > after) throw new Error(`prober in ${this.netns}: its clock ${theirs} is not within [${before}, ${after}]: not the same monotonic clock`);
    return after - before;
  }

  probe(address: string, intervalMs: number, timeoutMs: number): Probe {
    const id = `p${++this.next}`;
    let armed!: (t: bigint) => void;
    let done!: (r: ProbeReply | undefined) => void;
    const armedP = new Promise<bigint>((resolve) => (armed = resolve));
    const result = new Promise<ProbeReply | undefined>((resolve) => (done = resolve));
    this.waiting.set(id, { armed, done });
    this.child.stdin.write(`probe ${id} ${address} ${intervalMs} ${timeoutMs}\n`);
    return {
      armed: armedP,
      result,
      cancel: () => {
        if (!this.waiting.has(id)) return;
        this.waiting.delete(id);
        done(undefined);
        this.child.stdin.write(`cancel ${id}\n`);
      },
    };
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

export interface RouteSeen {
  /** `ADDR dev IF ...`: a local workload's route. */
  local?: bigint;
  /** `ADDR encap ip ...`: a route to another host. */
  encap?: bigint;
}

export class RouteMonitor {
  private readonly child: ChildProcessWithoutNullStreams;
  readonly seen = new Map<string, RouteSeen>();

  constructor(readonly netns: string) {
    this.child = spawn('ip', ['-o', '-4', '-n', netns, 'monitor', 'route'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin.on('error', () => undefined);
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => this.onLine(line, now()));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private onLine(line: string, t: bigint): void {
    const m = /^(\d+\.\d+\.\d+\.\d+)(?:\/32)?\s+(encap|dev) /.exec(line);
    if (!m) return; // deletions, other types (local, unreachable), subnets
    let s = this.seen.get(m[1]!);
    if (!s) this.seen.set(m[1]!, (s = {}));
    if (m[2] === 'encap') s.encap ??= t;
    else s.local ??= t;
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

const TRACE_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/support/arp_trace.py');

export interface TraceEvent {
  kind: 'arp-request' | 'arp-reply' | 'echo-request' | 'echo-reply';
  way: 'in' | 'out';
  t: bigint;
  from: string;
  to: string;
}

/** bench/support/arp_trace.py in a workload's namespace: its ARP and echo packets, timed. */
export class ArpTrace {
  private readonly child: ChildProcessWithoutNullStreams;
  readonly events: TraceEvent[] = [];
  readonly ready: Promise<void>;

  constructor(readonly netns: string) {
    this.child = spawn('ip', ['netns', 'exec', netns, 'python3', TRACE_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin.on('error', () => undefined);
    let ready!: () => void;
    this.ready = new Promise<void>((resolve, reject) => {
      ready = resolve;
      this.child.once('exit', () => reject(new Error(`arp_trace.py in ${netns} exited`)));
    });
    this.ready.catch(() => undefined);
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      const w = line.split(' ');
      if (w[0] === 'ready') return ready();
      if (w.length === 5) this.events.push({ kind: w[0] as TraceEvent['kind'], way: w[1] as TraceEvent['way'], t: BigInt(w[2]!), from: w[3]!, to: w[4]! });
    });
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}
