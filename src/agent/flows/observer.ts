// The agent's flow pipeline: conntrack events and periodic table reads (FlowTracker),
// logged drops (DeniedAttempts), each turned into samples with the network context of the
// host state last reconciled, and shipped to the collector (FlowShipper).

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { Gauge, type Registry } from 'prom-client';
import { FlowShipper, type ShipperStats } from '../../analytics/shipper.js';
import type { HostState } from '../host-state.js';
import { listConntrack, watchConntrack } from './conntrack.js';
import { type FlowContext, flowContext } from './context.js';
import { DeniedAttempts, readDenyLog } from './denied.js';
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

export interface FlowObserverStats extends ShipperStats {
  /** Flows being followed. */
  live: number;
  /** Flows that left the table without their DESTROY event reaching us. */
  lost: number;
  deniedPackets: number;
}

const RESTART_MS = 1_000;
const nowUs = () => Math.floor((performance.timeOrigin + performance.now()) * 1000);

export class FlowObserver {
  private readonly shipper: FlowShipper;
  private readonly tracker: FlowTracker;
  private readonly denied: DeniedAttempts;
  private events: ChildProcess | undefined;
  private nflog: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  private stopped = false;
  private ctx: { host: HostState; ctx: FlowContext } | undefined;
  private deniedPackets = 0;

  constructor(
    private readonly opts: FlowOptions,
    private readonly self: { host: string; underlayIp?: string },
    private readonly hostState: () => HostState | undefined,
  ) {
    this.shipper = new FlowShipper({ url: opts.collector, token: opts.token, host: self.host, ...(opts.maxBuffered ? { maxBuffered: opts.maxBuffered } : {}) });
    this.tracker = new FlowTracker((samples) => this.shipper.push(samples));
    // Its own uuid half: denied attempts and tracked flows number their flows apart.
    this.denied = new DeniedAttempts(Number.parseInt(this.shipper.source.slice(-8), 16));
  }

  start(): void {
    enableAccounting();
    this.shipper.start();
    this.watchEvents();
    this.watchDenied();
    this.timer = setInterval(() => void this.read(), this.opts.intervalMs ?? 10_000);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.events?.kill();
    this.nflog?.kill();
    this.shipper.stop();
  }

  /** cirrus_agent_flow_samples{state}: what the pipeline holds, shipped and lost. */
  register(registry: Registry): void {
    const stats = () => this.stats();
    new Gauge({
      name: 'cirrus_agent_flows',
      help: 'Flow pipeline: samples buffered, dropped (buffer full), acknowledged by the collector; flows live and lost; denied packets logged',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const s = stats();
        for (const k of ['buffered', 'dropped', 'acked', 'resent', 'live', 'lost', 'deniedPackets'] as const) this.set({ state: k }, s[k]);
      },
    });
  }

  stats(): FlowObserverStats {
    return { ...this.shipper.stats, live: this.tracker.size, lost: this.tracker.lost, deniedPackets: this.deniedPackets };
  }

  /** The context of the host state last reconciled (recomputed when that changes). */
  private context(): FlowContext | undefined {
    const host = this.hostState();
    if (!host) return undefined;
    if (this.ctx?.host !== host) this.ctx = { host, ctx: flowContext(host, this.self) };
    return this.ctx.ctx;
  }

  private async read(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      this.tracker.onTable(await listConntrack(), this.context(), nowUs());
    } catch (e) {
      console.error(`cirrus agent: flows: ${(e as Error).message}`);
    } finally {
      this.reading = false;
    }
    const denied = this.denied.flush();
    if (denied.length) this.shipper.push(denied);
  }

  private watchEvents(): void {
    if (this.stopped) return;
    this.events = watchConntrack(
      (entries) => this.tracker.onEvents(entries, this.context(), nowUs()),
      (why) => {
        if (this.stopped) return;
        console.error(`cirrus agent: flows: ${why}; restarting it`);
        setTimeout(() => this.watchEvents(), RESTART_MS);
      },
    );
  }

  private watchDenied(): void {
    if (this.stopped) return;
    this.nflog = readDenyLog(
      (p) => {
        const ctx = this.context();
        if (ctx && this.denied.add(p, ctx)) this.deniedPackets++;
      },
      (why) => {
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
