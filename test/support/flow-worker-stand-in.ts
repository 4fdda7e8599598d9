// A stand-in flow pipeline for test/unit/flow-worker.test.ts, served by the real worker side
// (worker-serve.ts) in a real worker thread: it runs one reader process (sleep) the way the
// real pipeline runs conntrack, counts the host states posted to it (stats: live), reports a
// fixed event buffer, and crashes on a host state with a pending reason
// 'crash-once:<marker file>' (once: it leaves the marker).

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import type { HostState } from '../../src/agent/host-state.js';
import type { FlowObserverStats } from '../../src/agent/flows/observer.js';
import { spawnReader } from '../../src/agent/flows/reader.js';
import { type FlowPipeline, serveFlowWorker } from '../../src/agent/flows/worker-serve.js';

class StandIn implements FlowPipeline {
  private hosts = 0;
  private child: ChildProcess | undefined;

  start(): void {
    this.child = spawnReader('sleep', ['sleep', '600'], { onData: () => undefined, onExit: () => undefined });
  }

  setHost(host: HostState): void {
    this.hosts++;
    const marker = host.pending.find((p) => p.reason.startsWith('crash-once:'))?.reason.slice('crash-once:'.length);
    if (marker && !fs.existsSync(marker)) {
      fs.writeFileSync(marker, '');
      throw new Error('stand-in: asked to crash');
    }
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) await new Promise((resolve) => c.once('exit', resolve).kill());
  }

  stats(): FlowObserverStats {
    return { connected: false, buffered: 0, dropped: 0, acked: 0, resent: 0, unparsed: 0, overruns: 0, live: this.hosts, lost: 0, deniedPackets: 0, pids: this.child?.pid ? { events: this.child.pid } : {}, eventBuffer: { bytes: 4096 } };
  }
}

// `node --test dist/test/` also loads this file on its own, outside a worker: then it does nothing.
if (!isMainThread) serveFlowWorker(new StandIn());
