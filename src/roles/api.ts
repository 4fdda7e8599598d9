// The config API role: the embedded store, the config service and the HTTP server.

import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../api/server.js';
import { ConfigService } from '../config/service.js';
import { SqliteStore } from '../store/sqlite.js';
import { listenUnix } from '../util/unix-listener.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** "8082", ":8082", "127.0.0.1:8082" or "[::1]:8082". */
export function parseListen(text: string, defaultHost = '127.0.0.1'): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`--listen: '${text}' is not PORT or HOST:PORT`);
  return { host: m[1] ?? (m[2] || defaultHost), port };
}

export interface ApiRole {
  url: string;
  svc: ConfigService;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startApi(opts: { dataDir: string; listen: ListenAddress; socket?: string; logLevel?: string }): Promise<ApiRole> {
  const store = new SqliteStore(path.join(opts.dataDir, 'config.db'));
  const svc = await ConfigService.open(store);
  const app = await buildApi(svc, opts.logLevel ? { logLevel: opts.logLevel } : {});
  await app.listen({ host: opts.listen.host, port: opts.listen.port });
  const unix = opts.socket ? await listenUnix(app, opts.socket) : undefined;
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.listen.port;
  const host = opts.listen.host.includes(':') ? `[${opts.listen.host}]` : opts.listen.host;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    svc,
    app,
    async close() {
      unix?.close();
      await app.close();
      svc.close();
      await store.close();
    },
  };
}

