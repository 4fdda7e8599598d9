// The flow worker thread's entry (flow-worker.ts starts it): the flow pipeline (observer.ts).

import { workerData } from 'node:worker_threads';
import { FlowObserver } from './observer.js';
import { serveFlowWorker } from './worker-serve.js';
import type { FlowWorkerData } from './worker-protocol.js';

const { options, self } = workerData as FlowWorkerData;
serveFlowWorker(new FlowObserver(options, self));
