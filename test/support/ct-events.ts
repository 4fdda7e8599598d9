// The agent's conntrack event reader against bursts of connections, in a namespace of its
// own: for test/agent/ct-event-buffer.test.ts and bench/ct-events.ts. The namespace tracks
// connections (an nft rule that asks for conntrack) and ends an entry a second after its
// connection's RST (nf_conntrack_tcp_timeout_close=1: per namespace, like every sysctl set
// here; the host-wide net.core ones are left alone), so a burst of connections becomes, a
// second later, a burst of DESTROY events as fast as the kernel's garbage collector finds
// them. The reader runs in the namespace (ct-events-main.ts).

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { EventBuffer } from '../../src/agent/flows/event-buffer.js';
import { pollUntil } from '../../src/util/poll.js';
import { addNetns, sh } from './agent.js';
import { REPO } from './server.js';

/** The source of the UDP entry whose DESTROY marks the end of a burst's events. */
export const MARKER_SRC = '127.0.0.2';
export const HELPER = path.join(REPO, 'lib/nlrcvbuf.py');
const MAIN = path.join(REPO, 'dist/test/support/ct-events-main.js');
const BURST = path.join(REPO, 'test/support/conn-burst.py');

export type ReaderMode = 'reader' | 'bare';

export interface BurstResult {
  /** Connections opened and closed, each a conntrack entry and so a DESTROY event. */
  connections: number;
  seconds: number;
  /** TCP DESTROY events the reader got. */
  events: number;
  /** conntrack's ENOBUFS warnings. */
  overruns: number;
}

async function must(cmd: string, args: string[], timeoutMs = 20_000): Promise<string> {
  const r = await sh(cmd, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * A namespace where loopback connections are tracked, with counters and kernel times as the
 * agent sets them (the events' size), and a reset one's entry ends a second later.
 */
export async function addTrackingNetns(ns: string): Promise<void> {
  await addNetns(ns);
  await must('ip', ['netns', 'exec', ns, 'nft', 'add table ip t; add chain ip t out { type filter hook output priority 0; }; add rule ip t out ct state new counter']);
  const sysctls = ['net.netfilter.nf_conntrack_acct=1', 'net.netfilter.nf_conntrack_timestamp=1', 'net.netfilter.nf_conntrack_tcp_timeout_close=1'];
  await must('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...sysctls]);
}

/** SO_RCVBUF of the event sockets of process `pid`, read by the helper without changing it. */
export async function readRcvbuf(pid: number): Promise<number[]> {
  const out = JSON.parse(await must('python3', [HELPER, '--wait', '5', String(pid)])) as { sockets: { rcvbuf: number }[] };
  return out.sockets.map((s) => s.rcvbuf);
}

export class ReaderProcess {
  private readonly lines: string[] = [];
  private stderr = '';
  private exited = false;
  /** conntrack -E's pid (in `bare` mode setpriv's, until it execs conntrack: the same pid). */
  pid = 0;
  /** The agent's reader: what it made of the event buffer. */
  buffer: EventBuffer | undefined;

  private constructor(
    private readonly ns: string,
    private readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout! }).on('line', (l) => this.lines.push(l));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr = (this.stderr + c).slice(-2000)));
    child.on('exit', () => (this.exited = true));
  }

  /** Starts the reader in `ns` and waits until its event socket is open (and, the agent's, enlarged). */
  static async start(ns: string, mode: ReaderMode): Promise<ReaderProcess> {
    const p = new ReaderProcess(ns, spawn('ip', ['netns', 'exec', ns, 'node', MAIN, mode], { stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      const first = JSON.parse(await p.nextLine('the reader to start', 15_000)) as { pid: number; buffer?: EventBuffer };
      p.pid = first.pid;
      p.buffer = first.buffer;
      await readRcvbuf(p.pid); // waits for the event socket
      return p;
    } catch (e) {
      await p.stop();
      throw e;
    }
  }

  /**
   * `count` connections (at most `seconds`), then waits for their entries to end and for
   * the marker's DESTROY to reach the reader: every event before it was read or lost.
   */
  async burst(count: number, seconds: number): Promise<BurstResult> {
    const inNs = (...cmd: string[]) => must('ip', ['netns', 'exec', this.ns, ...cmd], (seconds + 30) * 1000);
    const sent = JSON.parse(await inNs('python3', BURST, String(count), String(seconds))) as { connections: number; seconds: number };
    await pollUntil('the burst\'s conntrack entries to end', async () => ((await inNs('cat', '/proc/sys/net/netfilter/nf_conntrack_count')).trim() === '0' ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
    await inNs('conntrack', '-I', '-p', 'udp', '-s', MARKER_SRC, '-d', MARKER_SRC, '--sport', '9', '--dport', '9', '-t', '30');
    await inNs('conntrack', '-D', '-p', 'udp', '-s', MARKER_SRC);
    const got = JSON.parse(await this.nextLine('the marker to reach the reader', 30_000)) as { events: number; overruns: number };
    return { ...sent, ...got };
  }

  private nextLine(what: string, timeoutMs: number): Promise<string> {
    const check = () => {
      if (this.exited && !this.lines.length) throw new Error(`the reader exited: ${this.stderr.trim()}`);
      return this.lines.shift();
    };
    return pollUntil(what, check, { timeoutMs, intervalMs: 20 });
  }

  /** Ends the reader (and so its conntrack -E) and waits for it. */
  async stop(): Promise<void> {
    if (this.exited || this.child.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    await gone;
  }
}
