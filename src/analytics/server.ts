// The collector: agents' flow channels in (WebSocket at CHANNEL_PATH, token auth), the
// store, and TF's analytics API out (port 8081): POST /analytics/query, GET
// /analytics/tables, /analytics/table/<t>/schema, /analytics/uves/virtual-network/<fq_name>;
// plus /healthz and /metrics.

import http from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import { type WebSocket, WebSocketServer } from 'ws';
import { errorBody } from '../api/http.js';
import { bearerMatches } from '../control/auth.js';
import { listenUnix } from '../util/unix-listener.js';
import { CHANNEL_PATH, MAX_FRAME, parseSenderMessage } from './channel.js';
import { QueryError, TABLES, type TableName, parseTime, planQuery, tableSchema } from './query.js';
import type { FlowStore } from './store.js';
import { vnUve } from './uve.js';

export interface CollectorOptions {
  store: FlowStore;
  token: string;
  host: string;
  port: number;
  /** Also serve everything (the channel too) on this unix socket: agents in other namespaces. */
  socket?: string;
  logLevel?: string;
}

const HELLO_TIMEOUT_MS = 10_000;

export class Collector {
  readonly metrics = new Registry();
  private app: FastifyInstance | undefined;
  private unix: http.Server | undefined;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  private readonly m;

  constructor(private readonly opts: CollectorOptions) {
    const registers = [this.metrics];
    const store = opts.store;
    this.m = {
      samples: new Counter({ name: 'cirrus_collector_samples_total', help: 'Flow samples received and stored (resent duplicates not counted)', registers }),
      rejected: new Counter({ name: 'cirrus_collector_rejected_total', help: 'Channels closed or refused, by reason', labelNames: ['reason'], registers }),
      senders: new Gauge({ name: 'cirrus_collector_senders', help: 'Connected agents', registers }),
      stored: new Gauge({
        name: 'cirrus_collector_store_records',
        help: 'Flow samples kept',
        registers,
        async collect() {
          this.set((await store.stats()).records);
        },
      }),
      disk: new Gauge({
        name: 'cirrus_collector_store_bytes',
        help: 'Bytes the flow store takes on disk',
        registers,
        async collect() {
          this.set((await store.stats()).bytes);
        },
      }),
      commits: new Counter({
        name: 'cirrus_collector_store_commits_total',
        help: 'Transactions that stored flow samples (small batches arriving together share one)',
        registers,
        async collect() {
          this.reset();
          this.inc((await store.stats()).commits);
        },
      }),
      expired: new Gauge({
        name: 'cirrus_collector_expired_records',
        help: 'Flow samples removed by retention since start, by reason',
        labelNames: ['reason'],
        registers,
        async collect() {
          const s = await store.stats();
          this.set({ reason: 'age' }, s.expired.age);
          this.set({ reason: 'size' }, s.expired.size);
        },
      }),
    };
  }

  async start(): Promise<string> {
    const app = Fastify({ logger: { level: this.opts.logLevel ?? 'warn' }, bodyLimit: 1024 * 1024 });
    this.app = app;
    this.routes(app);
    app.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    await app.listen({ host: this.opts.host, port: this.opts.port });
    if (this.opts.socket) {
      this.unix = await listenUnix(app, this.opts.socket);
      this.unix.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    }
    const a = app.server.address();
    const port = typeof a === 'object' && a ? a.port : this.opts.port;
    const host = this.opts.host === '0.0.0.0' ? '127.0.0.1' : this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `http://${host}:${port}`;
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
    this.unix?.close();
    await this.app?.close();
  }

  private routes(app: FastifyInstance): void {
    const store = this.opts.store;
    const base = (req: { protocol: string; headers: { host?: string } }) => `${req.protocol}://${req.headers.host ?? 'localhost'}`;
    app.setErrorHandler((e: Error & { statusCode?: number }, _req, reply) => {
      if (e instanceof QueryError) return reply.code(400).send(errorBody(400, e.message));
      const code = e.statusCode && e.statusCode < 500 ? e.statusCode : 500;
      if (code === 500) console.error(`cirrus collector: ${e.stack ?? e.message}`);
      return reply.code(code).send(errorBody(code, e.message));
    });
    app.get('/healthz', async () => ({ status: 'ok', ...(await store.stats()) }));
    app.get('/metrics', async (_req, reply) => reply.type(this.metrics.contentType).send(await this.metrics.metrics()));
    app.get('/analytics/tables', async (req) => TABLES.map((name) => ({ name, href: `${base(req)}/analytics/table/${name}`, type: 'FLOW', display_name: name })));
    app.get<{ Params: { table: string } }>('/analytics/table/:table/schema', async (req, reply) => {
      if (!TABLES.includes(req.params.table as TableName)) return reply.code(404).send(errorBody(404, `no table '${req.params.table}' (tables: ${TABLES.join(', ')})`));
      return tableSchema(req.params.table as TableName);
    });
    app.post('/analytics/query', async (req) => {
      const plan = planQuery(req.body);
      try {
        return { value: plan.present(await store.select(plan.startUs, plan.endUs, plan.build)) };
      } catch (e) {
        // The engine's own complaints (a regular expression RE2 refuses, an overflowing value) are the query's fault.
        if (/Invalid Input Error|Conversion Error|Out of Range Error/.test((e as Error).message)) throw new QueryError((e as Error).message);
        throw e;
      }
    });
    app.get<{ Params: { fq: string }; Querystring: { since?: string } }>('/analytics/uves/virtual-network/:fq', async (req) => {
      const now = Date.now();
      const since = req.query.since ?? '1h';
      if (!/^\d+[smhd]$/.test(since)) throw new QueryError(`since: '${since}' is not N(s|m|h|d)`);
      return vnUve(store, req.params.fq, parseTime(`now-${since}`, 'since', now), now * 1000);
    });
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, why: string) => {
      this.m.rejected.inc({ reason: why });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${why}\n`);
    };
    if (new URL(req.url ?? '/', 'http://x').pathname !== CHANNEL_PATH) return refuse(404, `the flow channel is at ${CHANNEL_PATH}`);
    if (!bearerMatches(req.headers.authorization, this.opts.token)) return refuse(401, 'missing or wrong token');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  /** One sender: hello, then batches stored in order, each acknowledged once durable. */
  private accept(ws: WebSocket): void {
    let source: string | undefined;
    let chain = Promise.resolve();
    const close = (code: number, why: string) => {
      this.m.rejected.inc({ reason: why.split(':')[0]! });
      ws.close(code, why.slice(0, 120));
    };
    const timer = setTimeout(() => close(4000, 'no hello'), HELLO_TIMEOUT_MS);
    ws.on('message', (data, binary) => {
      let m;
      try {
        m = parseSenderMessage(data as Buffer, binary);
      } catch (e) {
        return close(4001, (e as Error).message);
      }
      if (m.type === 'hello') {
        if (source) return close(4002, 'hello: twice');
        clearTimeout(timer);
        const s = (source = m.source);
        this.m.senders.inc();
        chain = chain.then(async () => {
          ws.send(JSON.stringify({ type: 'welcome', held: await this.opts.store.committed(s) }));
        });
        return;
      }
      if (!source) return close(4002, 'batch: before hello');
      const s = source;
      // Appends are queued in arrival order (the store keeps them in order); acks follow the same order.
      const stored = this.opts.store.append(s, m.first, m.batch);
      const before = this.opts.store.committed(s);
      chain = chain.then(async () => {
        const was = await before;
        const held = await stored;
        this.m.samples.inc(Math.max(0, held - Math.max(was, m.first - 1)));
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'ack', held }));
      }).catch((e: Error) => {
        console.error(`cirrus collector: storing flows of ${s}: ${e.message}`);
        ws.terminate();
      });
    });
    ws.on('close', () => {
      clearTimeout(timer);
      if (source) this.m.senders.dec();
    });
    ws.on('error', () => ws.terminate());
  }
}
