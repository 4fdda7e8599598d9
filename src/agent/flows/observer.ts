// The flow pipeline, run in the agent's flow worker thread (flow-worker.ts): conntrack's
// DESTROY events and periodic table reads (FlowTracker), logged drops (DeniedAttempts), each
// turned into samples with the network context of the host state the agent last reconciled
// (posted by the agent), and shipped to the collector (FlowShipper).

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { FlowShipper, type ShipperStats } from '../../analytics/shipper.js';
import type { HostState } from '../host-state.js';
import { type CtCounters, readTable } from './conntrack.js';
import { type FlowContext, flowContext } from './context.js';
import { DeniedAttempts, readDenyLog } from './denied.js';
import { DestroyEvents } from './destroy-events.js';
import type { EventBuffer } from './event-buffer.js';
import { RESTART_MS, stopReader } from './reader.js';
import { FlowTracker } from './tracker.js';

export interface FlowOptions {
  /** The collector: ws://HOST:PORT or unix:/PATH. */
  collector: string;
  token: string;
  /** Counters of live flows are read this often. */
  intervalMs?: number;
  /** Samples kept while the collector is away. */
  maxBuffered?: number;
}

export interface FlowObserverStats extends ShipperStats, CtCounters {
  /** Flows being followed (seen by a table read, not ended yet). */
  live: number;
  /** Flows that left the table without their DESTROY event reaching us. */
  lost: number;
  deniedPackets: number;
  /** Process ids of the long-lived readers (conntrack -E, the NFLOG reader), when running. */
  pids: { events?: number; nflog?: number };
  /** The receive buffer of the running conntrack -E's event socket, once set (or why not). */
  eventBuffer?: EventBuffer;
}

const nowUs = () => Math.floor((performance.timeOrigin + performance.now()) * 1000);

export class FlowObserver {
  private readonly shipper: FlowShipper;
  private readonly tracker: FlowTracker;
  private readonly denied: DeniedAttempts;
  private readonly events: DestroyEvents;
  private nflog: ChildProcess | undefined;
  private table: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ctx: FlowContext | undefined;
  private deniedPackets = 0;
  private readonly counters: CtCounters = { unparsed: 0, overruns: 0 };

  constructor(
    private readonly opts: FlowOptions,
    private readonly self: { host: string; underlayIp?: string },
  ) {
    this.shipper = new FlowShipper({ url: opts.collector, token: opts.token, host: self.host, ...(opts.maxBuffered ? { maxBuffered: opts.maxBuffered } : {}) });
    this.tracker = new FlowTracker((samples) => this.shipper.push(samples), nowUs());
    // Its own uuid half: denied attempts and tracked flows number their flows apart.
    this.denied = new DeniedAttempts(Number.parseInt(this.shipper.source.slice(-8), 16));
    this.events = new DestroyEvents({ onEntry: (e) => this.tracker.onEvent(e, this.ctx, nowUs()), onChunk: () => this.tracker.flush() }, this.counters);
  }

  /** The host state the agent last reconciled: the context of flows from now on. */
  setHost(host: HostState): void {
    this.ctx = flowContext(host, this.self);
  }

  start(): void {
    enableAccounting();
    this.shipper.start();
    this.events.start();
    this.watchDenied();
    this.timer = setInterval(() => this.read(), this.opts.intervalMs ?? 10_000);
  }

  /** Ends the readers (and waits for them: reaped, not left as zombies) and the shipper. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.all([this.events.stop(), ...[this.nflog, this.table].map((c) => c && stopReader(c))]);
    this.shipper.stop();
  }

  stats(): FlowObserverStats {
    return {
      ...this.shipper.stats,
      ...this.counters,
      live: this.tracker.size,
      lost: this.tracker.lost,
      deniedPackets: this.deniedPackets,
      pids: { ...(this.events.pid ? { events: this.events.pid } : {}), ...(this.nflog?.pid ? { nflog: this.nflog.pid } : {}) },
      ...(this.events.buffer ? { eventBuffer: this.events.buffer } : {}),
    };
  }

  private read(): void {
    if (this.table || this.stopped) return; // the last read is still going
    const t = nowUs();
    this.tracker.beginRead();
    this.table = readTable({ onEntry: (e) => this.tracker.tableEntry(e, this.ctx, t), onChunk: () => this.tracker.flush() }, this.counters, (error) => {
      this.table = undefined;
      if (error) {
        console.error(`cirrus agent: flows: ${error}`);
        this.tracker.abortRead();
      } else this.tracker.endRead();
      const denied = this.denied.flush();
      if (denied.length) this.shipper.push(denied);
    });
  }

  private watchDenied(): void {
    if (this.stopped) return;
    this.nflog = readDenyLog(
      (p) => {
        if (this.ctx && this.denied.add(p, this.ctx)) this.deniedPackets++;
      },
      (why) => {
        this.nflog = undefined;
        if (this.stopped) return;
        console.error(`cirrus agent: flows: ${why}; restarting it`);
        setTimeout(() => this.watchDenied(), RESTART_MS);
      },
    );
  }
}

/** Counters and start/stop times on conntrack entries (per network namespace, off by default). */
function enableAccounting(): void {
  for (const knob of ['nf_conntrack_acct', 'nf_conntrack_timestamp']) {
    try {
      fs.writeFileSync(`/proc/sys/net/netfilter/${knob}`, '1');
    } catch (e) {
      console.error(`cirrus agent: flows: cannot set net.netfilter.${knob}=1 (${(e as Error).message}): flow records will lack ${knob === 'nf_conntrack_acct' ? 'byte and packet counts' : 'kernel timestamps'}`);
    }
  }
}
