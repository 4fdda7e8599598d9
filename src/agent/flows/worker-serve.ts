// The worker side of the flow worker protocol (worker-protocol.ts): runs a pipeline in this
// worker thread and answers the agent. Reader processes the pipeline spawns come from this
// thread, so their --pdeathsig fires when the thread ends: a worker that crashes or is
// terminated takes them along.

import { parentPort } from 'node:worker_threads';
import type { HostState } from '../host-state.js';
import type { FlowObserverStats } from './observer.js';
import type { FromFlowWorker, ToFlowWorker } from './worker-protocol.js';

/** What the worker runs: FlowObserver (tests run a stand-in). */
export interface FlowPipeline {
  setHost(host: HostState): void;
  start(): void;
  /** Ends its processes (and waits for them) and connections. */
  stop(): Promise<void>;
  stats(): FlowObserverStats;
}

export function serveFlowWorker(pipeline: FlowPipeline): void {
  const port = parentPort;
  if (!port) throw new Error('the flow pipeline runs in a worker thread (flow-worker.ts starts it)');
  port.on('message', (m: ToFlowWorker) => {
    switch (m.type) {
      case 'host':
        pipeline.setHost(m.host);
        break;
      case 'stats':
        port.postMessage({ type: 'stats', id: m.id, stats: pipeline.stats() } satisfies FromFlowWorker);
        break;
      case 'stop':
        // process.exit in a worker ends this thread only.
        void pipeline.stop().finally(() => process.exit(0));
        break;
    }
  });
  pipeline.start();
}
