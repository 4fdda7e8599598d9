// Level-triggered reconciliation: read what Cirrus owns in the kernel, compute the
// minimal change to the desired state, apply it in batches. Nothing is flushed, so an
// agent restart does not disturb forwarding; anything changed behind the agent's back is
// put back on the next pass.

import type { HostState, PortState } from '../host-state.js';
import type { BatchError, Kernel, Translation } from './kernel.js';
import { HOST_SYSCTLS, type KernelState, type Link, createVethCommands, desiredState, plan, workloadConfig } from './model.js';
import { HOST_IF_PREFIX, type NftFamily, SERVICE_DEV, VXLAN_DEV } from './names.js';
import { type NftTable, ruleMapChains, sgChainKey, zonesOf } from './nft.js';

/** The parts of a pass: reading the kernel and planning, creating ports, nftables, the `ip` batch. */
export type Phase = 'read' | 'ports' | 'nft' | 'batch';

export interface ReconcileResult {
  durationMs: number;
  /** How long each phase took, ms. */
  phases: Record<Phase, number>;
  /** Kernel changes applied (batch lines and sysctl writes). */
  changes: number;
  created: string[];
  errors: BatchError[];
  /** Ports that could not be plumbed, by interface uuid, with the reason. */
  failedPorts: Map<string, string>;
  /** Owned or adopted host-side interfaces that exist after the pass. */
  present: Set<string>;
}

/** The rule maps of the desired tables, by family/name. */
function ruleMapContents(nft: Record<NftFamily, NftTable>): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const [family, t] of Object.entries(nft)) for (const name of t.ruleMaps?.keys() ?? []) out.set(`${family}/${name}`, t.maps.get(name)!);
  return out;
}

/** Every this many passes, per-interface sysctls are read back even on known interfaces. */
const DEEP_CHECK_EVERY = 30;

export class Reconciler {
  /** Interfaces (name → identity) whose sysctls were verified: reading thousands of /proc files each pass is the cost to avoid. */
  private readonly tuned = new Map<string, string>();
  /** Policy chains as last written (family/name → rules): unchanged ones are not rewritten. */
  private appliedChains = new Map<string, string>();
  /** Policy rule maps as last written (family/name → elements): read back only on full checks. */
  private appliedMaps = new Map<string, Map<string, string>>();
  private readBack = false;
  private passes = 0;
  /** Floating IPs' translations to local back ends as last applied (by zone/floating/back end). */
  private translations = new Map<string, Translation>();

  /**
   * Connections being forgotten (policy changed, translation ended): conntrack walks its
   * whole table for that, a tenth of a second and more with a large one, so passes do not
   * wait for it; one walk at a time, in order.
   */
  private forgetting: Promise<void> = Promise.resolve();

  constructor(
    private readonly kernel: Kernel,
    /** Told when a walk is over: how long it took, what failed. */
    private readonly onForgotten: (r: { ms: number; errors: BatchError[] }) => void = () => undefined,
  ) {}

  /** Resolves once the connections every pass so far asked to forget are forgotten. */
  forgotten(): Promise<void> {
    return this.forgetting;
  }

  private async forget(zones: number[], ended: Translation[]): Promise<void> {
    const started = performance.now();
    let errors: BatchError[];
    try {
      errors = [...(await this.kernel.flushConntrack(zones)), ...(await this.kernel.forgetTranslations(ended))];
    } catch (e) {
      errors = [{ line: 0, command: 'conntrack -D', message: (e as Error).message }]; // the next walk still runs
    }
    this.onForgotten({ ms: performance.now() - started, errors });
  }

  async reconcile(host: HostState): Promise<ReconcileResult> {
    const started = performance.now();
    const desired = desiredState(host);
    const adopted = new Set(host.ports.filter((p) => p.registration.mode === 'adopt').map((p) => p.hostIf));
    // Every DEEP_CHECK_EVERY passes (and the first) everything is read back and the policy
    // chains are rewritten whatever we believe they hold (what we wrote is still remembered:
    // a change is still a change).
    const deep = (this.passes + 1) % DEEP_CHECK_EVERY === 0 || this.passes === 0 || this.readBack;
    this.readBack = false;
    const phases: Record<Phase, number> = { read: 0, ports: 0, nft: 0, batch: 0 };
    let mark = started;
    const lap = (phase: Phase) => {
      const t = performance.now();
      phases[phase] = t - mark;
      mark = t;
    };
    const actual = await this.kernel.read((name) => name.startsWith(HOST_IF_PREFIX) || name === VXLAN_DEV || name === SERVICE_DEV || adopted.has(name), deep || this.appliedMaps.size === 0);
    const p = plan(desired, actual, deep ? new Map() : this.appliedChains, this.appliedMaps);
    const errors: BatchError[] = [];
    const failedPorts = new Map<string, string>();
    let changes = 0;

    lap('read');
    for (const s of HOST_SYSCTLS) changes += this.ensureSysctl(s.path, s.value);
    const created = await this.createPorts(p.create, errors, failedPorts);
    changes += created.length;
    // Commands for ports whose creation failed would fail too: leave them for the next pass.
    const failedIfs = new Set([...failedPorts.keys()].map((u) => host.ports.find((x) => x.vmiUuid === u)!.hostIf));
    const commands = p.commands.filter((c) => !c.dev || !failedIfs.has(c.dev)).map((c) => c.line);
    // Proxy ARP before the routes: a peer's first packet arrives as soon as the route
    // exists, and the workload's ARP for it must be answered at once, not after a retry.
    changes += this.tune(desired.sysctls, actual.links, created);
    lap('ports');
    const nftErrors = await this.kernel.nft(p.nft);
    errors.push(...nftErrors);
    // What the rule maps hold now (unknown after a failed script: read them back next pass).
    if (nftErrors.length) this.readBack = true;
    else this.appliedMaps = ruleMapContents(desired.nft);
    lap('nft');
    if (!nftErrors.length) {
      const zoneOf = zonesOf(host);
      const zones = this.policyChanged(p.nftWritten, p.nftChangedMaps, host, zoneOf, actual);
      const ended = this.endedTranslations(host, zoneOf);
      if (zones.length || ended.length) this.forgetting = this.forgetting.then(() => this.forget(zones, ended));
    }
    errors.push(...(await this.kernel.batch(commands)));
    lap('batch');
    changes += p.nft.length;
    changes += commands.length;
    const present = new Set([...actual.links.keys(), ...created].filter((name) => desired.ports.has(name)));
    return { durationMs: performance.now() - started, phases, changes, created, errors, failedPorts, present };
  }

  /**
   * Records the chains written; returns the conntrack zones whose policy changed (not just
   * written anew): their connections are forgotten, so each is judged again by the new
   * rules on its next packet, as OpenContrail re-evaluates flows. A chain this agent never
   * wrote but finds in the kernel (written before it started) may differ: it counts as
   * changed.
   */
  private policyChanged(written: Map<string, string>, changedMaps: Set<string>, host: HostState, zones: Map<string, number>, actual: KernelState): number[] {
    const byId = new Map(host.networks.map((n) => [n.id, n.uuid]));
    // Each chain → the zones of the ports it judges.
    const chainZones = new Map<string, Set<number>>();
    const note = (chain: string, network: string) => {
      let z = chainZones.get(chain);
      if (!z) chainZones.set(chain, (z = new Set()));
      z.add(zones.get(network)!);
    };
    for (const p of host.ports) {
      const id = host.networks.find((n) => n.uuid === p.network)?.id;
      for (const side of ['out', 'in']) {
        if (id !== undefined && byId.has(id)) note(`ip/pol_${side}_${id}`, p.network);
        if (p.securityGroups?.length) note(`ip/sg_${side}_${sgChainKey(p.securityGroups)}`, p.network);
      }
    }
    const changed = new Set<number>();
    // A rule map belongs to its network's chains.
    for (const map of changedMaps) for (const chain of ruleMapChains(map)) for (const z of chainZones.get(`ip/${chain}`) ?? []) changed.add(z);
    for (const [key, content] of written) {
      const before = this.appliedChains.get(key);
      this.appliedChains.set(key, content);
      const [family, name] = key.split('/') as [NftFamily, string];
      const table = actual.nft[family];
      const inherited = before === undefined && typeof table !== 'string' && table.chains.has(name);
      if (inherited || (before !== undefined && before !== content)) for (const z of chainZones.get(key) ?? []) changed.add(z);
    }
    return [...changed];
  }

  /**
   * Translations that stopped (a back end left a floating IP here, or its zone changed):
   * their connections are forgotten, so that they end rather than go on with a removed back
   * end (their next packet is a new connection, translated afresh, and reset).
   */
  private endedTranslations(host: HostState, zones: Map<string, number>): Translation[] {
    const now = new Map<string, Translation>();
    for (const f of host.floatingIps ?? []) {
      for (const b of f.local) {
        const t = { zone: zones.get(f.network)!, floating: f.address, backend: b.address };
        now.set(`${t.zone}/${t.floating}/${t.backend}`, t);
      }
    }
    const ended = [...this.translations].filter(([k]) => !now.has(k)).map(([, t]) => t);
    this.translations = now;
    return ended;
  }

  /**
   * Per-interface sysctls, checked once per interface (by identity) and every DEEP_CHECK_EVERY
   * passes; interfaces created in this pass are set now and checked on the next.
   */
  private tune(sysctls: Map<string, { path: string; value: string }[]>, links: Map<string, Link>, created: string[]): number {
    let changes = 0;
    if (++this.passes % DEEP_CHECK_EVERY === 0) this.tuned.clear();
    for (const [name, identity] of this.tuned) if (links.get(name)?.identity !== identity) this.tuned.delete(name);
    for (const name of [...links.keys(), ...created]) {
      const wanted = sysctls.get(name);
      if (!wanted || this.tuned.has(name)) continue;
      for (const s of wanted) changes += this.ensureSysctl(s.path, s.value);
      const identity = links.get(name)?.identity;
      if (identity !== undefined) this.tuned.set(name, identity);
    }
    return changes;
  }

  private ensureSysctl(path: string, value: string): number {
    const current = this.kernel.readSysctl(path);
    if (current === undefined || current === value) return 0;
    this.kernel.writeSysctl(path, value);
    return 1;
  }

  /** Creates veth pairs (one host batch) then configures the workload namespaces. */
  private async createPorts(ports: PortState[], errors: BatchError[], failed: Map<string, string>): Promise<string[]> {
    if (ports.length === 0) return [];
    // One line per command so that a failure points at its port.
    const lines: { port: PortState; line: string }[] = ports.flatMap((port) => createVethCommands(port).map((line) => ({ port, line })));
    const batchErrors = await this.kernel.batch(lines.map((l) => l.line));
    for (const e of batchErrors) {
      const port = lines[e.line - 1]?.port;
      if (port) failed.set(port.vmiUuid, `${e.command}: ${e.message}`);
      else errors.push(e);
    }
    const ok = ports.filter((port) => !failed.has(port.vmiUuid));
    const nsErrors = await this.kernel.configureWorkloads(ok.map(workloadConfig));
    for (const [id, error] of nsErrors) failed.set(id, error);
    // A veth whose workload side could not be configured goes: the next pass starts over.
    const halfMade = ok.filter((port) => failed.has(port.vmiUuid)).map((port) => `link del dev ${port.hostIf}`);
    errors.push(...(await this.kernel.batch(halfMade)));
    return ok.filter((port) => !failed.has(port.vmiUuid)).map((port) => port.hostIf);
  }
}
