// The agent's sessions with control nodes. It keeps two (the first reachable ones of its
// list), each with its own copy of the host's document; the forwarding state follows one
// of them (the active one), and the other is a warm standby: when the active node dies the
// agent switches to the standby's document, which, computed from the same configuration,
// is the same, so nothing changes in the kernel. With no node at all the agent keeps its
// last document (headless); it is also kept on disk so that a restarted agent has it.

import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { type ControlMessage, type EntryValue, PROTOCOL_PATH, parseControlMessage } from '../control/protocol.js';

export interface ControlClientOptions {
  /** ws://HOST:PORT or wss://HOST:PORT, in order of preference. */
  urls: string[];
  host: string;
  underlayIp?: string;
  /** This host is a gateway (control nodes give it the external and SNAT networks). */
  gateway?: boolean;
  token: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Where the last document is kept. */
  stateFile?: string;
}

export type HostDocument = ReadonlyMap<string, EntryValue>;

interface Session {
  url: string;
  ws: WebSocket;
  doc: Map<string, EntryValue>;
  seq: number;
  synced: boolean;
  node?: string;
}

export interface ControlEvents {
  change: [];
  status: [];
}

/** Sessions kept open at once (TF: two control nodes per agent). */
const SESSIONS = 2;
/** A session that hears nothing (no ping, no data) for this long is considered dead. */
const SILENCE_MS = 15_000;

export class ControlClient extends EventEmitter<ControlEvents> {
  private readonly sessions = new Map<string, Session>();
  private active: Session | undefined;
  private current: Map<string, EntryValue> | undefined;
  private readonly backoff = new Map<string, { until: number; ms: number }>();
  private timer: NodeJS.Timeout | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ports: string[] = [];

  constructor(private readonly opts: ControlClientOptions) {
    super();
    if (!opts.urls.length) throw new Error('no control node given');
    this.current = this.load();
  }

  /** The document forwarding follows (the last one known while headless). */
  get doc(): HostDocument | undefined {
    return this.current;
  }

  /** Whether a control node session is in sync (false: headless, forwarding on the last document). */
  get synced(): boolean {
    return !!this.active;
  }

  /** Connected control nodes, the active one first. */
  status(): { url: string; node?: string; synced: boolean; active: boolean; seq: number }[] {
    return [...this.sessions.values()]
      .map((s) => ({ url: s.url, ...(s.node ? { node: s.node } : {}), synced: s.synced, active: s === this.active, seq: s.seq }))
      .sort((a, b) => Number(b.active) - Number(a.active));
  }

  /** The interfaces registered here (sent to every control node now and on each reconnect). */
  setPorts(vmis: string[]): void {
    this.ports = vmis;
    for (const s of this.sessions.values()) if (s.ws.readyState === WebSocket.OPEN) this.sendPorts(s.ws);
  }

  private sendPorts(ws: WebSocket): void {
    ws.send(JSON.stringify({ type: 'ports', vmis: this.ports }));
  }

  start(): void {
    this.connectMissing();
    this.timer = setInterval(() => this.connectMissing(), 500);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const s of this.sessions.values()) s.ws.terminate();
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.save();
    }
  }

  private connectMissing(): void {
    if (this.stopped) return;
    const now = Date.now();
    for (const url of this.opts.urls) {
      if (this.sessions.size >= SESSIONS) return;
      if (this.sessions.has(url) || (this.backoff.get(url)?.until ?? 0) > now) continue;
      this.connect(url);
    }
  }

  private connect(url: string): void {
    const ws = new WebSocket(new URL(PROTOCOL_PATH, url), {
      headers: { authorization: `Bearer ${this.opts.token}` },
      handshakeTimeout: 5_000,
      maxPayload: 512 * 1024 * 1024,
      ...(this.opts.tls ?? {}),
    });
    const s: Session = { url, ws, doc: new Map(), seq: 0, synced: false };
    this.sessions.set(url, s);
    let silence: NodeJS.Timeout | undefined;
    const alive = () => {
      clearTimeout(silence);
      silence = setTimeout(() => ws.terminate(), SILENCE_MS);
    };
    ws.on('open', () => {
      alive();
      ws.send(JSON.stringify({ type: 'hello', host: this.opts.host, ...(this.opts.underlayIp ? { underlayIp: this.opts.underlayIp } : {}), ...(this.opts.gateway ? { gateway: true } : {}) }));
      this.sendPorts(ws);
    });
    ws.on('ping', alive);
    ws.on('message', (data) => {
      alive();
      let msg: ControlMessage;
      try {
        msg = parseControlMessage(String(data));
      } catch (e) {
        console.error(`cirrus agent: control node ${url}: ${(e as Error).message}; reconnecting`);
        ws.terminate();
        return;
      }
      this.receive(s, msg);
    });
    ws.on('unexpected-response', (_req, res) => {
      console.error(`cirrus agent: control node ${url} refused the session: HTTP ${res.statusCode}`);
      ws.terminate();
    });
    ws.on('error', (e) => {
      if (!this.stopped) console.error(`cirrus agent: control node ${url}: ${e.message}`);
    });
    ws.on('close', () => {
      clearTimeout(silence);
      this.sessions.delete(url);
      const b = this.backoff.get(url);
      const ms = s.synced ? 200 : Math.min((b?.ms ?? 100) * 2, 5_000);
      this.backoff.set(url, { until: Date.now() + ms, ms });
      if (this.active === s) this.failover();
      this.emit('status');
      if (!this.stopped) setTimeout(() => this.connectMissing(), ms);
    });
  }

  private receive(s: Session, msg: ControlMessage): void {
    if (msg.type === 'sync') {
      s.doc = new Map(msg.entries);
      s.seq = msg.seq;
      s.synced = true;
      s.node = msg.node;
      this.backoff.delete(s.url);
      if (!this.active || this.active === s) this.activate(s);
      this.emit('status');
      return;
    }
    if (!s.synced || msg.seq !== s.seq + 1) {
      // Out of order: the document can no longer be trusted; a reconnect brings a fresh one.
      console.error(`cirrus agent: control node ${s.url}: delta ${msg.seq} after ${s.seq}; resyncing`);
      s.ws.terminate();
      return;
    }
    s.seq = msg.seq;
    for (const k of msg.del) s.doc.delete(k);
    for (const [k, v] of msg.set) s.doc.set(k, v);
    if (this.active === s) this.changed();
  }

  private activate(s: Session): void {
    this.active = s;
    this.current = s.doc;
    this.changed();
  }

  /** The active session ended: follow the standby if it is in sync, else stay headless. */
  private failover(): void {
    this.active = undefined;
    const standby = [...this.sessions.values()].find((x) => x.synced);
    if (standby) this.activate(standby);
  }

  private changed(): void {
    this.emit('change');
    if (this.opts.stateFile && !this.saveTimer) this.saveTimer = setTimeout(() => this.save(), 500);
  }

  private save(): void {
    this.saveTimer = undefined;
    const file = this.opts.stateFile;
    if (!file || !this.current) return;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(`${file}.tmp`, JSON.stringify([...this.current]));
      fs.renameSync(`${file}.tmp`, file);
    } catch (e) {
      console.error(`cirrus agent: cannot keep the control document in ${file}: ${(e as Error).message}`);
    }
  }

  private load(): Map<string, EntryValue> | undefined {
    const file = this.opts.stateFile;
    if (!file || !fs.existsSync(file)) return undefined;
    try {
      const entries = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
      // Checked like a sync from a node: a damaged file is ignored, not trusted.
      const msg = parseControlMessage(JSON.stringify({ type: 'sync', seq: 0, node: 'disk', entries }));
      return new Map((msg as Extract<ControlMessage, { type: 'sync' }>).entries);
    } catch (e) {
      console.error(`cirrus agent: ignoring ${file}: ${(e as Error).message}`);
      return undefined;
    }
  }
}
