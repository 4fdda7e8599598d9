// The collector role: the flow store in DATA and the collector serving agents' flow
// channels and the analytics API (TF: port 8081).

import { loadToken } from '../control/auth.js';
import { DuckFlowStore } from '../analytics/duckdb-store.js';
import { Collector } from '../analytics/server.js';
import type { Retention } from '../analytics/store.js';
import type { ListenAddress } from './api.js';

export const DEFAULT_ANALYTICS_PORT = 8081;
export const DEFAULT_RETENTION: Retention = { maxAgeMs: 7 * 86_400_000, maxBytes: 10 * 1024 ** 3 };

export interface CollectorRoleOptions {
  dataDir: string;
  listen: ListenAddress;
  /** The agents' token file (the control nodes' token; created when missing). */
  tokenFile: string;
  retention?: Retention;
  socket?: string;
  logLevel?: string;
}

export interface CollectorRole {
  url: string;
  collector: Collector;
  close(): Promise<void>;
}

export async function startCollector(opts: CollectorRoleOptions): Promise<CollectorRole> {
  const token = loadToken(opts.tokenFile, true);
  const store = await DuckFlowStore.open({ dir: opts.dataDir, retention: opts.retention ?? DEFAULT_RETENTION });
  const collector = new Collector({ store, token, host: opts.listen.host, port: opts.listen.port, ...(opts.socket ? { socket: opts.socket } : {}), ...(opts.logLevel ? { logLevel: opts.logLevel } : {}) });
  try {
    const url = await collector.start();
    return {
      url,
      collector,
      async close() {
        await collector.stop();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}
