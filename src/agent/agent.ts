// The per-host agent: follows its host's document from the control nodes, keeps the port
// registrations, and reconciles the kernel whenever either changes, when the kernel changes behind its back
// (ip monitor), and periodically. One reconcile runs at a time; requests made meanwhile
// coalesce into one more pass.

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ControlClient, type ControlClientOptions } from './control-client.js';
import { PROTECTION_CHAINS, readAclHits } from './dataplane/acl-hits.js';
import { LinuxKernel, type Kernel } from './dataplane/kernel.js';
import { type ReconcileResult, Reconciler } from './dataplane/reconciler.js';
import { FlowWorker, type FlowWorkerStats } from './flows/flow-worker.js';
import type { FlowOptions } from './flows/observer.js';
import { type GatewayConfig, type HostState, type PortState, computeHostState } from './host-state.js';
import { type PortRegistration, PortRegistry } from './ports/registry.js';
import { AgentServices, type ServiceOptions } from './services/services.js';

export interface AgentOptions {
  /** This host's name (its virtual-router is default-global-system-config:<host>). */
  host: string;
  /** Underlay (tunnel endpoint) address registered on the virtual-router. */
  underlayIp?: string;
  /** This host connects external and SNAT networks to the outside through this interface and next hop. */
  gateway?: GatewayConfig;
  /** Control nodes (ws:// or wss:// URLs, in order of preference), the token and TLS material. */
  control: Pick<ControlClientOptions, 'urls' | 'token' | 'tls'>;
  /** Where port registrations are kept. */
  stateDir: string;
  /** Full resync period. */
  resyncMs?: number;
  kernel?: Kernel;
  /** DHCP and DNS for the workloads (services/). */
  services?: ServiceOptions;
  /** Ship flow records to a collector (src/agent/flows/, in a worker thread); absent: no flow records. */
  flows?: FlowOptions;
}

export interface PortStatus {
  registration: PortRegistration;
  state?: PortState;
  /** active: plumbed; pending: configuration incomplete or interface missing; failed: the kernel refused. */
  status: 'active' | 'pending' | 'failed' | 'disabled';
  reason?: string;
}

export class Agent {
  readonly registry: PortRegistry;
  readonly control: ControlClient;
  readonly metrics = new Registry();
  readonly services: AgentServices;
  private readonly reconciler: Reconciler;
  private readonly kernel: Kernel;
  private hostState: HostState | undefined;
  /** The last host state's ports and pending registrations by interface uuid (status lookups are per port). */
  private portIndex = new Map<string, PortState>();
  private pendingIndex = new Map<string, string>();
  private last: ReconcileResult | undefined;
  private running = false;
  private requested = 0;
  private completed = 0;
  private readonly waiters: { gen: number; resolve: () => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private monitor: ChildProcess | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly flows: FlowWorker | undefined;
  private readonly m;

  constructor(readonly opts: AgentOptions) {
    this.registry = new PortRegistry(path.join(opts.stateDir, 'ports'));
    this.control = new ControlClient({ ...opts.control, host: opts.host, ...(opts.underlayIp ? { underlayIp: opts.underlayIp } : {}), ...(opts.gateway ? { gateway: true } : {}), stateFile: path.join(opts.stateDir, 'control-document.json') });
    this.kernel = opts.kernel ?? new LinuxKernel();
    this.reconciler = new Reconciler(this.kernel, ({ ms, errors }) => {
      this.m.phases.observe({ phase: 'conntrack' }, ms / 1000);
      this.m.errors.inc(errors.length);
      for (const e of errors) console.error(`cirrus agent: ${e.command}: ${e.message}`);
    });
    this.services = new AgentServices(() => this.control.doc, opts.services ?? {}, this.metrics);
    if (opts.flows) this.flows = new FlowWorker({ options: opts.flows, self: { host: opts.host, ...(opts.underlayIp ? { underlayIp: opts.underlayIp } : {}) } });
    this.flows?.register(this.metrics);
    const registers = [this.metrics];
    this.m = {
      reconciles: new Counter({ name: 'cirrus_agent_reconciles_total', help: 'Reconcile passes', registers }),
      errors: new Counter({ name: 'cirrus_agent_reconcile_errors_total', help: 'Kernel commands that failed', registers }),
      changes: new Counter({ name: 'cirrus_agent_kernel_changes_total', help: 'Kernel changes applied', registers }),
      duration: new Histogram({
        name: 'cirrus_agent_reconcile_duration_seconds',
        help: 'Duration of reconcile passes',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers,
      }),
      phases: new Histogram({
        name: 'cirrus_agent_reconcile_phase_seconds',
        help: 'Duration of the phases of reconcile passes: read (the kernel, and planning), ports (creating them), nft, batch (ip); and conntrack: forgetting connections after a pass (the pass does not wait for it)',
        labelNames: ['phase'],
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers,
      }),
      ports: new Gauge({ name: 'cirrus_agent_ports', help: 'Registered ports by status', labelNames: ['status'], registers }),
      sessions: new Gauge({ name: 'cirrus_agent_control_sessions', help: 'Control node sessions in sync', registers }),
      // Per policy rule the counts are in introspect's /acl-hits: thousands of rules would be thousands of series.
      protectionDrops: new Gauge({
        name: 'cirrus_agent_protection_dropped_packets',
        help: 'Packets dropped by anti-spoofing (spoofed source) and host protection, by family',
        labelNames: ['family', 'reason'],
        registers,
        async collect() {
          this.reset();
          for (const h of await readAclHits(PROTECTION_CHAINS).catch(() => [])) if (h.verdict === 'drop') this.inc({ family: h.family, reason: h.rule }, h.packets);
        },
      }),
    };
  }

  start(): void {
    this.control.on('change', () => {
      this.services.documentChanged();
      this.schedule();
    });
    this.control.on('status', () => this.m.sessions.set(this.control.status().filter((s) => s.synced).length));
    this.publishPorts();
    this.services.start();
    this.control.start();
    this.timer = setInterval(() => this.schedule(), this.opts.resyncMs ?? 10_000);
    this.watchKernel();
    this.flows?.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const flows = this.flows?.stop();
    this.control.stop();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.monitor?.kill();
    this.services.stop();
    while (this.running) await this.reconciled(this.requested);
    await flows;
    this.kernel.close();
  }

  // ---- ports ---------------------------------------------------------------------------

  /**
   * Registers (or replaces) a port and returns once a reconcile has seen it; with
   * `waitMs`, waits that long for a pending port (its configuration may still be on its
   * way from the API) to become active or fail.
   */
  async addPort(reg: PortRegistration, waitMs = 0): Promise<PortStatus> {
    this.registry.put(reg);
    this.publishPorts();
    await this.reconciled(this.schedule());
    const deadline = Date.now() + waitMs;
    let status = this.portStatus(reg.vmiUuid)!;
    while (status.status === 'pending' && Date.now() < deadline) {
      await Promise.race([this.reconciled(this.completed + 1), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())))]);
      status = this.portStatus(reg.vmiUuid)!;
    }
    return status;
  }

  async deletePort(vmiUuid: string): Promise<boolean> {
    const existed = this.registry.delete(vmiUuid);
    if (existed) this.publishPorts();
    if (existed) await this.reconciled(this.schedule());
    return existed;
  }

  async setEnabled(vmiUuid: string, enabled: boolean): Promise<boolean> {
    const reg = this.registry.get(vmiUuid);
    if (!reg) return false;
    this.registry.put({ ...reg, enabled });
    await this.reconciled(this.schedule());
    return true;
  }

  portStatus(vmiUuid: string): PortStatus | undefined {
    const registration = this.registry.get(vmiUuid);
    if (!registration) return undefined;
    const state = this.portIndex.get(vmiUuid);
    if (!registration.enabled) return { registration, ...(state ? { state } : {}), status: 'disabled' };
    const pending = this.pendingIndex.get(vmiUuid);
    if (pending) return { registration, status: 'pending', reason: this.control.synced ? pending : `${pending}; no control node is reachable (headless: forwarding on the last state), so this host may not know the interface yet` };
    if (!state) return { registration, status: 'pending', reason: this.control.doc ? 'not reconciled yet' : 'no configuration from a control node yet' };
    const failed = this.last?.failedPorts.get(vmiUuid);
    if (failed) return { registration, state, status: 'failed', reason: failed };
    if (!this.last?.present.has(state.hostIf)) return { registration, state, status: 'pending', reason: `interface ${state.hostIf} does not exist` };
    return { registration, state, status: 'active' };
  }

  ports(): PortStatus[] {
    return this.registry.list().map((r) => this.portStatus(r.vmiUuid)!);
  }

  /** The flow worker's state and pipeline; undefined without flow records. */
  flowStats(): Promise<FlowWorkerStats> | undefined {
    return this.flows?.stats();
  }

  get state(): { host: HostState | undefined; last: ReconcileResult | undefined } {
    return { host: this.hostState, last: this.last };
  }

  /** Tells the control nodes which interfaces are registered here. */
  private publishPorts(): void {
    this.control.setPorts(this.registry.list().map((r) => r.vmiUuid));
  }

  // ---- reconciliation --------------------------------------------------------------------

  /** Asks for a reconcile pass; returns its generation. */
  schedule(): number {
    const gen = ++this.requested;
    if (!this.running) void this.runPasses();
    return gen;
  }

  /** Resolves once a pass requested at or after `gen` has completed. */
  reconciled(gen: number): Promise<void> {
    if (this.completed >= gen) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ gen, resolve }));
  }

  private async runPasses(): Promise<void> {
    this.running = true;
    try {
      while (this.completed < this.requested && !this.stopped) {
        const gen = this.requested;
        await this.pass();
        this.completed = gen;
        for (const w of this.waiters.splice(0)) {
          if (w.gen <= gen) w.resolve();
          else this.waiters.push(w);
        }
      }
    } finally {
      this.running = false;
      if (this.stopped) for (const w of this.waiters.splice(0)) w.resolve();
    }
  }

  private async pass(): Promise<void> {
    const doc = this.control.doc;
    // Without a document the desired state is unknown: touch nothing (keep forwarding).
    if (!doc) return;
    const host = computeHostState(doc, this.registry.list(), { host: this.opts.host, ...(this.opts.underlayIp ? { underlayIp: this.opts.underlayIp } : {}), ...(this.opts.gateway ? { gateway: this.opts.gateway } : {}) });
    this.services.setPorts(host.ports);
    const end = this.m.duration.startTimer();
    try {
      this.last = await this.reconciler.reconcile(host);
      this.hostState = host;
      this.flows?.setHost(host);
      this.portIndex = new Map(host.ports.map((p) => [p.vmiUuid, p]));
      this.pendingIndex = new Map(host.pending.map((p) => [p.vmiUuid, p.reason]));
      this.m.changes.inc(this.last.changes);
      for (const [phase, ms] of Object.entries(this.last.phases)) this.m.phases.observe({ phase }, ms / 1000);
      this.m.errors.inc(this.last.errors.length + this.last.failedPorts.size);
      for (const e of this.last.errors) console.error(`cirrus agent: ${e.command}: ${e.message}`);
    } catch (e) {
      this.m.errors.inc();
      console.error(`cirrus agent: reconcile failed: ${(e as Error).message}`);
    } finally {
      end();
      this.m.reconciles.inc();
      const counts = { active: 0, pending: 0, failed: 0, disabled: 0 };
      for (const p of this.ports()) counts[p.status]++;
      for (const [status, n] of Object.entries(counts)) this.m.ports.set({ status }, n);
    }
  }

  /** Any link, route or rule event may be a change behind our back, or an adopted interface appearing. */
  private watchKernel(): void {
    if (this.stopped) return;
    // setpriv: the monitor dies with the agent, even a kill -9 of it (an orphan would keep the namespace busy).
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', 'ip', '-o', 'monitor', 'link', 'route', 'rule'], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitor = child;
    child.stdout.on('data', () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.schedule(), 20);
    });
    child.on('exit', () => {
      if (!this.stopped) setTimeout(() => this.watchKernel(), 1_000);
    });
  }
}
