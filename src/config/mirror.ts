// A copy of the configuration in another process (the control node's): a snapshot from the
// API, then the store's change feed by long-poll, applied to the same ConfigView the server
// uses. While the API is unreachable the copy stays as it was.

import { EventEmitter } from 'node:events';
import { ConfigView } from './view.js';
import type { Change, KeyValue } from '../store/store.js';
import { HttpError, requestJson } from '../util/http-client.js';

export interface MirrorEvents {
  /** The changes applied, or none given: a new snapshot replaced the view. */
  change: [changes?: Change[]];
  connected: [];
  disconnected: [Error];
}

export class ConfigMirror extends EventEmitter<MirrorEvents> {
  private current: ConfigView | undefined;
  private stopped = false;
  /** Ends the pending long-poll on stop: otherwise the process lingers until it times out. */
  private readonly abort = new AbortController();
  connected = false;

  constructor(private readonly api: string) {
    super();
  }

  /** The configuration, once the first snapshot arrived. */
  get view(): ConfigView | undefined {
    return this.current;
  }

  start(): void {
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }

  private async loop(): Promise<void> {
    let backoff = 200;
    while (!this.stopped) {
      try {
        if (!this.current) await this.snapshot();
        const res = await requestJson<{ rev: number; changes: Change[] }>(this.api, 'GET', `/_cirrus/watch?since=${this.current!.rev}&timeout=20`, undefined, 30_000, this.abort.signal);
        this.setConnected(true);
        backoff = 200;
        if (res.changes.length) {
          this.current!.apply(res.changes);
          this.emit('change', res.changes);
        }
      } catch (e) {
        if (this.stopped) break;
        if (e instanceof HttpError && e.status === 410) {
          // History compacted (or a different store): start over from a snapshot.
          await this.snapshot().catch(() => undefined);
          continue;
        }
        this.setConnected(false, e as Error);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }

  private async snapshot(): Promise<void> {
    const snap = await requestJson<{ rev: number; kvs: KeyValue[] }>(this.api, 'GET', '/_cirrus/snapshot', undefined, 30_000, this.abort.signal);
    const view = new ConfigView();
    view.load(snap.kvs, snap.rev);
    this.current = view;
    this.setConnected(true);
    this.emit('change');
  }

  private setConnected(up: boolean, error?: Error): void {
    if (up === this.connected) return;
    this.connected = up;
    if (up) this.emit('connected');
    else this.emit('disconnected', error ?? new Error('disconnected'));
  }
}
