// The agent's flow worker: the flow pipeline (observer.ts) runs in a worker thread
// (worker-main.ts), so that reading conntrack, tracking flows and shipping them never stall
// the agent's reconcile loop, port API and control channel. The agent posts the host state
// it last reconciled (only when it changed) and asks for stats (metrics, introspect). A
// worker that dies is reported and started again after a backoff (1 s, doubling to a
// minute; back to 1 s once one ran for a minute): flow records stop for a while, the agent
// goes on.

import { isDeepStrictEqual } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Gauge, type Registry } from 'prom-client';
import type { HostState } from '../host-state.js';
import type { FlowObserverStats } from './observer.js';
import type { FlowWorkerData, FromFlowWorker, ToFlowWorker } from './worker-protocol.js';

export interface FlowWorkerStats {
  running: boolean;
  /** Times the worker died and was started again. */
  restarts: number;
  /** How the last worker ended, when one did. */
  lastExit?: string;
  /** The running worker's pipeline (undefined: none running, or it did not answer in time). */
  pipeline?: FlowObserverStats;
}

const WORKER_MAIN = new URL('./worker-main.js', import.meta.url);
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
const STATS_TIMEOUT_MS = 2_000;
const STOP_GRACE_MS = 5_000;
/**
 * The worker's heap: a burst of flows once grew the agent by 300 MB; now it costs the worker
 * (which restarts) rather than the host. Its steady state is tens of MB (a 100,000-sample
 * shipper buffer and the live flows).
 */
const MAX_HEAP_MB = 512;

export class FlowWorker {
  private worker: Worker | undefined;
  private host: HostState | undefined;
  private startedAt = 0;
  private backoffMs = BACKOFF_MIN_MS;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private restarts = 0;
  private lastExit: string | undefined;
  private seq = 0;
  private readonly waiting = new Map<number, (s: FlowObserverStats | undefined) => void>();

  /** `script`: the worker's entry (tests start a stand-in speaking the same protocol). */
  constructor(
    private readonly data: FlowWorkerData,
    private readonly script: URL = WORKER_MAIN,
  ) {}

  start(): void {
    this.spawn();
  }

  /** The host state the agent reconciled; posted when it differs from the last one posted. */
  setHost(host: HostState): void {
    if (this.host && isDeepStrictEqual(this.host, host)) return;
    this.host = host;
    this.post({ type: 'host', host });
  }

  async stats(): Promise<FlowWorkerStats> {
    const w = this.worker;
    const base = { running: w !== undefined, restarts: this.restarts, ...(this.lastExit ? { lastExit: this.lastExit } : {}) };
    if (!w) return base;
    const id = ++this.seq;
    const pipeline = await new Promise<FlowObserverStats | undefined>((resolve) => {
      const timer = setTimeout(() => this.answer(id, undefined), STATS_TIMEOUT_MS);
      this.waiting.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      this.post({ type: 'stats', id });
    });
    return { ...base, ...(pipeline ? { pipeline } : {}) };
  }

  /** cirrus_agent_flows{state}: what the pipeline holds, shipped and lost, its event buffer, and worker restarts. */
  register(registry: Registry): void {
    const stats = () => this.stats();
    new Gauge({
      name: 'cirrus_agent_flows',
      help: 'Flow pipeline: samples buffered, dropped (buffer full), acknowledged by the collector, resent; flows live and lost; denied packets logged; conntrack lines not understood, event overruns, the receive buffer of the event socket in bytes (0: not set); flow worker restarts',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const s = await stats();
        this.set({ state: 'restarts' }, s.restarts);
        // A worker that did not answer leaves the last values.
        const p = s.pipeline;
        if (!p) return;
        for (const k of ['buffered', 'dropped', 'acked', 'resent', 'live', 'lost', 'deniedPackets', 'unparsed', 'overruns'] as const) this.set({ state: k }, p[k]);
        // 0: not set (yet, or it failed: the agent's log says why).
        this.set({ state: 'eventBufferBytes' }, p.eventBuffer && 'bytes' in p.eventBuffer ? p.eventBuffer.bytes : 0);
      },
    });
  }

  /** Ends the worker: it stops its readers and shipper; terminated if it does not within a few seconds. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const w = this.worker;
    if (!w) return;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    this.post({ type: 'stop' });
    const grace = setTimeout(() => void w.terminate(), STOP_GRACE_MS);
    await exited;
    clearTimeout(grace);
  }

  private spawn(): void {
    const w = new Worker(this.script, { workerData: this.data, resourceLimits: { maxOldGenerationSizeMb: MAX_HEAP_MB } });
    this.worker = w;
    this.startedAt = Date.now();
    let error: Error | undefined;
    w.on('message', (m: FromFlowWorker) => this.answer(m.id, m.stats));
    w.on('error', (e) => (error = e));
    w.on('exit', (code) => {
      this.worker = undefined;
      for (const id of [...this.waiting.keys()]) this.answer(id, undefined);
      if (this.stopped) return;
      this.lastExit = error ? `crashed: ${error.message}` : `exited (${code})`;
      this.restarts++;
      if (Date.now() - this.startedAt >= BACKOFF_MAX_MS) this.backoffMs = BACKOFF_MIN_MS;
      console.error(`cirrus agent: flows: the flow worker ${this.lastExit}; starting it again in ${this.backoffMs / 1000} s`);
      this.timer = setTimeout(() => this.spawn(), this.backoffMs);
      this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    });
    if (this.host) this.post({ type: 'host', host: this.host });
  }

  private answer(id: number, stats: FlowObserverStats | undefined): void {
    const resolve = this.waiting.get(id);
    this.waiting.delete(id);
    resolve?.(stats);
  }

  private post(m: ToFlowWorker): void {
    try {
      this.worker?.postMessage(m);
    } catch (e) {
      // Not cloneable (a function in the host state would be a bug): say so, keep the agent going.
      console.error(`cirrus agent: flows: cannot post ${m.type} to the flow worker: ${(e as Error).message}`);
    }
  }
}
