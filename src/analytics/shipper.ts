// The sending end of the flow channel (channel.ts): a bounded buffer of numbered samples,
// a connection to the collector that comes back by itself, and resending from what the
// collector says it holds. While the collector is away the buffer fills; past its bound new
// samples are dropped and counted (the oldest are kept: they go first when it returns).

import crypto from 'node:crypto';
import WebSocket from 'ws';
import { CHANNEL_PATH, MAX_BATCH, MAX_FRAME, parseCollectorMessage } from './channel.js';
import { encodeFrame } from './frame.js';
import { type FlowSample, encodeBatch } from './schema.js';

export interface ShipperOptions {
  /** ws://HOST:PORT, wss://..., or unix:/PATH (the collector's socket). */
  url: string;
  token: string;
  host: string;
  /** Samples kept while unacknowledged. */
  maxBuffered?: number;
  /** Batches in flight before an ack. */
  window?: number;
  /**
   * How long pushed samples may wait for more before they go (unless a whole batch is
   * waiting): the flow pipeline pushes a few dozen samples at a time, and each frame costs
   * the collector a transaction (~5 ms of CPU, whatever its size: at 50 ms, four agents
   * under a few thousand connections a second kept the collector at 40 % of a core, 140 µs
   * a sample against 4 µs in whole batches). Default LINGER_MS.
   */
  lingerMs?: number;
  tls?: { ca?: Buffer };
}

export interface ShipperStats {
  connected: boolean;
  /** Samples waiting (unsent or unacknowledged). */
  buffered: number;
  /** Samples dropped because the buffer was full. */
  dropped: number;
  /** Samples the collector acknowledged. */
  acked: number;
  /** Samples sent again after a reconnect. */
  resent: number;
}

/** Flow records are read seconds after a flow ends: one more second costs nothing. */
const LINGER_MS = 1_000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;

export class FlowShipper {
  /** This run's identity: the collector keeps a sequence number per source. */
  readonly source: string;
  /**
   * Unacknowledged samples are buffer[head..], numbered contiguously from `bufferSeq` (a
   * dropped sample never gets a number). Acknowledged ones are cut off now and then, not per
   * ack (a copy of the whole buffer each time).
   */
  private buffer: FlowSample[] = [];
  private head = 0;
  private bufferSeq = 1;
  /** Index in buffer[head..] of the first sample not sent on this connection. */
  private next = 0;
  private seq = 0;
  private held = 0;
  private inflight = 0;
  private ws: WebSocket | undefined;
  private ready = false;
  private retryMs = RETRY_MIN_MS;
  private timer: NodeJS.Timeout | undefined;
  private linger: NodeJS.Timeout | undefined;
  private stopped = false;
  private everSent = 0;
  readonly stats: ShipperStats = { connected: false, buffered: 0, dropped: 0, acked: 0, resent: 0 };
  private readonly waiters: { seq: number; resolve: () => void }[] = [];

  constructor(private readonly opts: ShipperOptions) {
    this.source = `${opts.host}/${crypto.randomBytes(4).toString('hex')}`;
  }

  start(): void {
    this.connect();
  }

  /** Queues samples; returns how many were dropped (buffer full). */
  push(samples: readonly FlowSample[]): number {
    const room = Math.max(0, (this.opts.maxBuffered ?? 100_000) - this.waitingCount());
    const take = Math.min(room, samples.length);
    for (let i = 0; i < take; i++) this.buffer.push(samples[i]!);
    this.seq += take;
    const dropped = samples.length - take;
    this.stats.dropped += dropped;
    this.stats.buffered = this.waitingCount();
    if (this.waitingCount() - this.next >= MAX_BATCH) this.pump();
    else this.linger ??= setTimeout(() => {
      this.linger = undefined;
      this.pump();
    }, this.opts.lingerMs ?? LINGER_MS);
    return dropped;
  }

  /** Resolves once everything pushed so far is acknowledged. */
  drained(): Promise<void> {
    const seq = this.seq;
    if (this.held >= seq) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ seq, resolve }));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.linger);
    this.ws?.terminate();
  }

  private connect(): void {
    if (this.stopped) return;
    const url = this.opts.url.startsWith('unix:') ? `ws+unix://${this.opts.url.slice(5)}:${CHANNEL_PATH}` : `${this.opts.url.replace(/\/$/, '')}${CHANNEL_PATH}`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.opts.token}` }, maxPayload: MAX_FRAME, ...(this.opts.tls?.ca ? { ca: this.opts.tls.ca } : {}) });
    this.ws = ws;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', source: this.source, host: this.opts.host })));
    ws.on('message', (data) => {
      let m;
      try {
        m = parseCollectorMessage(String(data));
      } catch (e) {
        console.error(`cirrus agent: flow channel: ${(e as Error).message}`);
        ws.terminate();
        return;
      }
      if (m.type === 'welcome') {
        this.ready = true;
        this.stats.connected = true;
        this.retryMs = RETRY_MIN_MS;
        this.acknowledge(m.held);
        // Everything the collector does not hold goes (again) on this connection.
        this.next = 0;
        this.inflight = 0;
        this.pump();
      } else {
        this.inflight = Math.max(0, this.inflight - 1);
        this.acknowledge(m.held);
        // What waits for its linger goes with it: sending on every ack would clock frames
        // by the collector's commits (one small transaction after another).
        if (!this.linger || this.waitingCount() - this.next >= MAX_BATCH) this.pump();
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      this.ready = false;
      this.stats.connected = false;
      if (this.stopped) return;
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    });
  }

  private waitingCount(): number {
    return this.buffer.length - this.head;
  }

  private acknowledge(held: number): void {
    if (held <= this.held) return;
    this.held = held;
    const n = Math.min(this.waitingCount(), held - this.bufferSeq + 1);
    if (n > 0) {
      this.head += n;
      if (this.head === this.buffer.length || (this.head >= 4096 && this.head * 2 >= this.buffer.length)) {
        this.buffer = this.buffer.slice(this.head);
        this.head = 0;
      }
      this.bufferSeq += n;
      this.next = Math.max(0, this.next - n);
      this.stats.acked += n;
      this.stats.buffered = this.waitingCount();
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.seq <= held) this.waiters.splice(i, 1)[0]!.resolve();
    }
  }

  private pump(): void {
    const ws = this.ws;
    if (!ws || !this.ready || ws.readyState !== WebSocket.OPEN) return;
    while (this.inflight < (this.opts.window ?? 8) && this.next < this.waitingCount()) {
      const first = this.bufferSeq + this.next;
      const n = Math.min(MAX_BATCH, this.waitingCount() - this.next);
      const from = this.head + this.next;
      ws.send(encodeFrame(first, encodeBatch(this.buffer, from, from + n)));
      if (first + n - 1 <= this.everSent) this.stats.resent += Math.min(n, this.everSent - first + 1);
      this.everSent = Math.max(this.everSent, first + n - 1);
      this.next += n;
      this.inflight++;
    }
  }
}
