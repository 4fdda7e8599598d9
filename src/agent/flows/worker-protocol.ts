// Messages between the agent (flow-worker.ts) and its flow worker thread (worker-main.ts).
// Everything crosses by structured clone: plain data, Maps and Sets, no functions.

import type { HostState } from '../host-state.js';
import type { FlowObserverStats, FlowOptions } from './observer.js';

/** The worker's workerData. */
export interface FlowWorkerData {
  options: FlowOptions;
  self: { host: string; underlayIp?: string };
}

export type ToFlowWorker =
  /** The host state the agent last reconciled (sent when it changed, and to a new worker). */
  | { type: 'host'; host: HostState }
  | { type: 'stats'; id: number }
  /** Stop readers and shipper, then exit. */
  | { type: 'stop' };

export type FromFlowWorker = { type: 'stats'; id: number; stats: FlowObserverStats };
