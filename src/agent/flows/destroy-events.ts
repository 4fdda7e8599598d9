// The flow pipeline's DESTROY event reader, kept running: conntrack -E (conntrack.ts),
// started again a second after it ends, and its event socket's receive buffer enlarged from
// outside once it has opened it (event-buffer.ts: conntrack 1.4.7 does not).

import type { ChildProcess } from 'node:child_process';
import { type CtCounters, type CtStreamHandlers, EVENT_BUFFER_BYTES, watchDestroys } from './conntrack.js';
import { type EventBuffer, enlargeEventBuffer } from './event-buffer.js';
import { RESTART_MS, stopReader } from './reader.js';

export class DestroyEvents {
  private events: ChildProcess | undefined;
  private helper: ChildProcess | undefined;
  private eventBuffer: EventBuffer | undefined;
  private stopped = false;

  constructor(
    private readonly h: CtStreamHandlers,
    private readonly counters: CtCounters,
  ) {}

  /** conntrack -E's process id, while it runs. */
  get pid(): number | undefined {
    return this.events?.pid;
  }

  /** The running conntrack -E's event socket buffer, once set (or why it was not). */
  get buffer(): EventBuffer | undefined {
    return this.eventBuffer;
  }

  start(): void {
    if (this.stopped) return;
    const events = watchDestroys(this.h, this.counters, (why) => {
      this.events = this.eventBuffer = undefined;
      if (this.stopped) return;
      console.error(`cirrus agent: flows: ${why}; restarting it`);
      setTimeout(() => this.start(), RESTART_MS);
    });
    this.events = events;
    // The pid is setpriv's until it execs conntrack (same pid); the helper waits for the socket.
    if (events.pid !== undefined) this.enlarge(events, events.pid);
  }

  /** Ends conntrack -E and the helper, and waits for them (reaped, not left as zombies). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.events, this.helper].map((c) => c && stopReader(c)));
  }

  private enlarge(events: ChildProcess, pid: number): void {
    const helper = enlargeEventBuffer(pid, EVENT_BUFFER_BYTES, (r) => {
      if (this.helper === helper) this.helper = undefined;
      if (this.stopped || this.events !== events) return; // that conntrack ended meanwhile
      this.eventBuffer = r;
      if ('error' in r) console.error(`cirrus agent: flows: cannot enlarge the receive buffer of conntrack -E's event socket (${r.error}): it keeps net.core.rmem_default, and bursts of connections ending lose DESTROY events (overruns)`);
    });
    this.helper = helper;
  }
}
