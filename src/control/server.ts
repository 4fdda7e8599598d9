// The control node: follows the configuration (the store's change feed, through the API),
// keeps the routing engine up to date, and streams each connected agent its host's
// document: a sync on connect, then ordered deltas. Agents authenticate with the shared
// token (and a client certificate when the node is given a CA: mTLS). Serves /healthz,
// /metrics and /agents (who is connected, at which sequence) on the same port.

import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { type WebSocket, WebSocketServer } from 'ws';
import { ConfigMirror } from '../config/mirror.js';
import { Keys } from '../config/object.js';
import type { Change } from '../store/store.js';
import { requestJson } from '../util/http-client.js';
import { listenUnix } from '../util/unix-listener.js';
import { bearerMatches } from './auth.js';
import { type ControlMessage, type Hello, PROTOCOL_PATH, encodeControlMessage, parseHello, parsePorts } from './protocol.js';
import { bindingHost } from './interfaces.js';
import { type Delta, RoutingEngine } from './routing.js';
import { DelayedWithdrawals, floatingValues } from './withdrawals.js';

export interface ControlOptions {
  /** Config API: http://HOST:PORT or unix:/PATH. */
  api: string;
  host: string;
  port: number;
  token: string;
  /** This node's name (in syncs and introspect). */
  name: string;
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  /** Also serve /healthz, /metrics and /agents on this unix socket (for callers in other namespaces). */
  socket?: string;
}

interface Session {
  ws: WebSocket;
  host: string;
  hello: Hello;
  seq: number;
  since: string;
  remote: string;
  /** Forwarding state the host stops needing, withdrawn a moment later (withdrawals.ts). */
  withdrawals: DelayedWithdrawals;
}

/** An agent that does not say hello in this time is dropped. */
const HELLO_TIMEOUT_MS = 10_000;
const PING_INTERVAL_MS = 5_000;
/** An agent this far behind (bytes queued) is dropped; it resyncs when it reconnects. */
const MAX_BUFFERED = 64 * 1024 * 1024;

export class ControlNode {
  readonly metrics = new Registry();
  private readonly mirror: ConfigMirror;
  private engine: RoutingEngine | undefined;
  private readonly sessions = new Map<string, Set<Session>>();
  /** Interfaces agents registered (vmi → host), bound in the configuration when nothing binds them yet. */
  private readonly claims = new Map<string, string>();
  private readonly binding = new Set<string>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private app: FastifyInstance | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private unix: http.Server | undefined;
  private readonly m;

  constructor(readonly opts: ControlOptions) {
    this.mirror = new ConfigMirror(opts.api);
    const registers = [this.metrics];
    this.m = {
      agents: new Gauge({ name: 'cirrus_control_agents', help: 'Connected agent sessions', registers }),
      syncs: new Counter({ name: 'cirrus_control_syncs_total', help: 'Full documents sent', registers }),
      deltas: new Counter({ name: 'cirrus_control_deltas_total', help: 'Deltas sent', registers }),
      rejected: new Counter({ name: 'cirrus_control_rejected_total', help: 'Connections refused (token, hello)', labelNames: ['reason'], registers }),
      compute: new Histogram({
        name: 'cirrus_control_compute_seconds',
        help: 'Time from a config change batch to the deltas of every host sent',
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
        registers,
      }),
      configConnected: new Gauge({ name: 'cirrus_control_config_connected', help: '1 while the config feed is connected', registers }),
    };
  }

  async start(): Promise<string> {
    this.mirror.on('change', (changes) => this.onConfig(changes));
    this.mirror.on('connected', () => this.m.configConnected.set(1));
    this.mirror.on('disconnected', () => this.m.configConnected.set(0));
    this.mirror.start();
    const tls = this.opts.tls;
    const app = Fastify({
      serverFactory: (handler) => {
        const server = (tls
          ? https.createServer({ cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}) }, handler)
          : http.createServer(handler)) as http.Server;
        // Fastify's own keep-alive (Node's 5 s default drops scrapers' idle connections).
        server.keepAliveTimeout = 72_000;
        return server;
      },
    });
    this.app = app;
    app.get('/healthz', async (_req, reply) => {
      const ready = !!this.engine;
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'waiting for the configuration', node: this.opts.name, rev: this.mirror.view?.rev ?? 0 });
    });
    app.get('/metrics', async (_req, reply) => reply.type(this.metrics.contentType).send(await this.metrics.metrics()));
    app.get('/agents', async () => ({
      node: this.opts.name,
      agents: [...this.sessions.values()].flatMap((s) => [...s]).map((s) => ({ host: s.host, underlayIp: s.hello.underlayIp, remote: s.remote, seq: s.seq, since: s.since })),
    }));
    app.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    await app.listen({ host: this.opts.host, port: this.opts.port });
    if (this.opts.socket) this.unix = await listenUnix(app, this.opts.socket);
    this.pinger = setInterval(() => {
      for (const set of this.sessions.values()) for (const s of set) s.ws.ping();
    }, PING_INTERVAL_MS);
    const a = app.server.address();
    const port = typeof a === 'object' && a ? a.port : this.opts.port;
    return `${tls ? 'wss' : 'ws'}://${this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host}:${port}`;
  }

  async stop(): Promise<void> {
    clearInterval(this.pinger);
    this.mirror.stop();
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
    this.unix?.close();
    await this.app?.close();
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, why: string) => {
      this.m.rejected.inc({ reason: why });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${why}\n`);
    };
    if (new URL(req.url ?? '/', 'http://x').pathname !== PROTOCOL_PATH) return refuse(404, `the agent protocol is at ${PROTOCOL_PATH}`);
    if (!bearerMatches(req.headers.authorization, this.opts.token)) return refuse(401, 'missing or wrong control token');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket.remoteAddress ?? ''));
  }

  private accept(ws: WebSocket, remote: string): void {
    const timer = setTimeout(() => {
      this.m.rejected.inc({ reason: 'no hello' });
      ws.close(4000, 'no hello');
    }, HELLO_TIMEOUT_MS);
    ws.once('message', (data) => {
      clearTimeout(timer);
      let hello: Hello;
      try {
        hello = parseHello(String(data));
      } catch (e) {
        this.m.rejected.inc({ reason: 'bad hello' });
        ws.close(4001, (e as Error).message.slice(0, 120));
        return;
      }
      const session: Session = { ws, host: hello.host, hello, seq: 0, since: new Date().toISOString(), remote, withdrawals: new DelayedWithdrawals((del) => this.delta(session, { set: [], del })) };
      let set = this.sessions.get(hello.host);
      if (!set) this.sessions.set(hello.host, (set = new Set()));
      set.add(session);
      this.m.agents.inc();
      ws.on('message', (msg) => {
        try {
          this.claim(hello.host, parsePorts(String(msg)).vmis);
        } catch (e) {
          ws.close(4002, (e as Error).message.slice(0, 120));
        }
      });
      ws.on('close', () => this.drop(session));
      void this.registerRouter(hello);
      if (this.engine) this.sync(session);
    });
    ws.on('error', () => ws.terminate());
  }

  private drop(s: Session): void {
    const set = this.sessions.get(s.host);
    if (!set?.delete(s)) return;
    s.withdrawals.clear();
    this.m.agents.dec();
    if (!set.size) {
      this.sessions.delete(s.host);
      this.engine?.unwatch(s.host);
    }
  }

  private sync(s: Session): void {
    s.seq = 0;
    s.withdrawals.clear();
    this.send(s, { type: 'sync', seq: 0, node: this.opts.name, entries: this.engine!.entries(s.host) });
    this.m.syncs.inc();
  }

  private send(s: Session, msg: ControlMessage): void {
    if (s.ws.bufferedAmount > MAX_BUFFERED) {
      s.ws.terminate();
      return;
    }
    s.ws.send(encodeControlMessage(msg));
  }

  private onConfig(changes?: Change[]): void {
    const end = this.m.compute.startTimer();
    const view = this.mirror.view!;
    if (!this.engine || !changes) {
      if (!this.engine) {
        this.engine = new RoutingEngine(view);
        for (const set of this.sessions.values()) {
          for (const s of set) {
            this.sync(s);
            void this.registerRouter(s.hello);
          }
        }
      } else this.fanOut(this.engine.reset(view));
      end();
      return;
    }
    const changed = new Set<string>();
    for (const c of changes) if (c.key.startsWith(Keys.objectPrefix)) changed.add(c.key.slice(c.key.lastIndexOf('/') + 1));
    if (changed.size) this.fanOut(this.engine.update(changed));
    end();
    for (const uuid of changed) {
      const host = this.claims.get(uuid);
      if (host) void this.bind(uuid, host);
    }
  }

  /** A host's registered interfaces: the unbound ones get bound to it. */
  private claim(host: string, vmis: string[]): void {
    for (const [vmi, h] of this.claims) if (h === host) this.claims.delete(vmi);
    for (const vmi of vmis) {
      this.claims.set(vmi, host);
      void this.bind(vmi, host);
    }
  }

  private async bind(vmi: string, host: string): Promise<void> {
    const obj = this.mirror.view?.get(vmi)?.obj;
    if (!obj || obj.type !== 'virtual-machine-interface' || bindingHost(obj) || this.binding.has(vmi)) return;
    const pairs = ((obj.props['virtual_machine_interface_bindings'] as { key_value_pair?: { key: string; value?: string }[] } | undefined)?.key_value_pair ?? []).filter((p) => p.key !== 'host_id');
    this.binding.add(vmi);
    try {
      await requestJson(this.opts.api, 'PUT', `/virtual-machine-interface/${vmi}`, {
        'virtual-machine-interface': { virtual_machine_interface_bindings: { key_value_pair: [...pairs, { key: 'host_id', value: host }] } },
      });
    } catch (e) {
      console.error(`cirrus control: cannot bind interface ${vmi} to ${host}: ${(e as Error).message}`);
    } finally {
      this.binding.delete(vmi);
    }
  }

  private fanOut(deltas: Map<string, Delta>): void {
    const fresh = floatingValues(deltas.values());
    for (const [host, d] of deltas) {
      for (const s of this.sessions.get(host) ?? []) s.withdrawals.deliver(d, (now) => this.delta(s, now), fresh);
    }
  }

  private delta(s: Session, d: Delta): void {
    this.send(s, { type: 'delta', seq: ++s.seq, set: d.set, del: d.del });
    this.m.deltas.inc();
  }

  /** Records (or corrects) the agent's virtual-router, whose address is the host's tunnel endpoint. */
  private async registerRouter(hello: Hello): Promise<void> {
    const fq = ['default-global-system-config', hello.host];
    const view = this.mirror.view;
    if (!view) return; // done once the configuration arrives
    const uuid = view.uuidByName('virtual-router', fq);
    const current = uuid ? view.get(uuid)?.obj.props : undefined;
    const gateway = hello.gateway === true;
    if (!hello.underlayIp || (current && current['virtual_router_ip_address'] === hello.underlayIp && (current['cirrus_gateway'] === true) === gateway)) return;
    const props = { virtual_router_ip_address: hello.underlayIp, cirrus_gateway: gateway };
    try {
      if (uuid) await requestJson(this.opts.api, 'PUT', `/virtual-router/${uuid}`, { 'virtual-router': props });
      else await requestJson(this.opts.api, 'POST', '/virtual-routers', { 'virtual-router': { fq_name: fq, parent_type: 'global-system-config', ...props } });
    } catch (e) {
      // Another control node may have created it meanwhile; the feed shows the outcome.
      console.error(`cirrus control: cannot record virtual-router ${hello.host}: ${(e as Error).message}`);
    }
  }
}
