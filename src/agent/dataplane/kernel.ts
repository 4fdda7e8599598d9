// The kernel behind a small interface (a shim, so the reconciler is testable without
// root): read what Cirrus owns with `ip -j`, apply changes with `ip -batch`, nftables
// through one long-lived libnftables helper (nft-session.ts), sysctls through /proc/sys.
// System tools are spawned with argument arrays, never a shell.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { KernelState, Neigh, Nexthop, Route, Rule } from './model.js';
import { neighKey, routeKey, ruleKey } from './model.js';
import {
  CIRRUS_PROTO,
  MAIN_TABLE,
  NETWORK_RULE_PREF,
  NFT_FAMILIES,
  NFT_TABLE,
  type NftFamily,
  SERVICE_DEV,
  TUNNEL_RULE_PREF,
  UNDERLAY_RULE_PREF,
  VXLAN_PORT,
  ifKey,
  isOwnedTable,
} from './names.js';
import { type NftTable, baseChains, fixedSets } from './nft.js';
import { NftSession } from './nft-session.js';
import { NamespaceConfigurator, type WorkloadConfig } from './nsconfig.js';

export interface BatchError {
  /** 1-based line of the batch. */
  line: number;
  command: string;
  message: string;
}

export interface Kernel {
  /** Cirrus-owned state; `owns` tells which interfaces are Cirrus's. */
  /** `all`: also read the policy rule maps (large: only when not known from what was written). */
  read(owns: (ifname: string) => boolean, all?: boolean): Promise<KernelState>;
  /** Runs `ip -batch` lines in the host namespace; returns the failed lines. */
  batch(lines: string[]): Promise<BatchError[]>;
  /** Applies an `nft -f` script atomically (all or nothing). */
  nft(lines: string[]): Promise<BatchError[]>;
  /** Forgets the connections of these conntrack zones (their policy changed). */
  flushConntrack(zones: number[]): Promise<BatchError[]>;
  /** Forgets the connections translated from these floating IPs to these back ends (no longer back ends here). */
  forgetTranslations(items: Translation[]): Promise<BatchError[]>;
  /** Configures workload interfaces inside their namespaces; errors by id. */
  configureWorkloads(items: WorkloadConfig[]): Promise<Map<string, string>>;
  readSysctl(path: string): string | undefined;
  writeSysctl(path: string, value: string): void;
  /** Ends helper processes. */
  close(): void;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.on('error', () => undefined); // the child may exit before reading everything
    child.stdin.end(input ?? '');
  });
}

interface IpLink {
  ifname: string;
  address?: string;
  flags?: string[];
}
export interface IpRoute {
  type?: string;
  dst: string;
  dev?: string;
  table?: string;
  /** "ip" for a tunnel route: VNI `id`, remote `encap_dst`. */
  encap?: string;
  id?: number;
  encap_dst?: string;
  gateway?: string;
  nhid?: number;
  protocol?: string;
  scope?: string;
  flags?: string[];
}

/** `ip -j route` output; an encapsulated route prints "dst" twice (the prefix, then the tunnel's): the second becomes `encap_dst`. */
export function parseIpRoutes(json: string): IpRoute[] {
  if (!json.trim()) return [];
  return JSON.parse(json.replace(/"encap":"ip","id":(\d+),"src":"([^"]*)","dst":/g, '"encap":"ip","id":$1,"encap_src":"$2","encap_dst":')) as IpRoute[];
}
/** `ip -j nexthop` output; a tunnel prints "id" twice (the object's, then the VNI): the second becomes `vni`. */
export function parseNexthops(json: string): Nexthop[] {
  if (!json.trim()) return [];
  const raw = JSON.parse(json.replace(/"encap":"ip","id":/g, '"encap":"ip","vni":')) as { id: number; vni?: number; encap?: string; dst?: string; group?: { id: number; weight?: number }[] }[];
  return raw.map((n) =>
    n.group
      ? { id: n.id, group: n.group.map((m) => ({ id: m.id, weight: m.weight ?? 1 })) }
      : { id: n.id, ...(n.encap === 'ip' && n.vni !== undefined && n.dst ? { encap: { vni: n.vni, dst: n.dst } } : {}) },
  );
}

interface IpRule {
  priority: number;
  iif?: string;
  fwmark?: string;
  tun_id?: number;
  ipproto?: string;
  dport?: number;
  table?: string;
}
interface IpAddr {
  ifname: string;
  addr_info?: { local: string; prefixlen: number }[];
}
interface IpNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
}

/** Batch mode's "Command failed -:N" lines, with the message printed before each. */
export function parseBatchErrors(stderr: string, lines: string[]): BatchError[] {
  const errors: BatchError[] = [];
  let message: string[] = [];
  for (const l of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(l.trim());
    if (m) {
      const line = Number(m[1]);
      errors.push({ line, command: lines[line - 1] ?? '', message: message.join(' ').trim() });
      message = [];
    } else if (l.trim()) message.push(l.trim());
  }
  return errors;
}

type NftType = string | string[];
/** nft prints protocol numbers by name; Cirrus writes numbers. */
const PROTOCOL_NUMBERS: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, sctp: 132 };
interface NftSetJson {
  family: string;
  table: string;
  name: string;
  type: NftType;
  map?: string;
  elem?: unknown[];
}
interface NftJson {
  nftables: { map?: NftSetJson; set?: NftSetJson; chain?: { family: string; table: string; name: string } }[];
}

/** An element part as nft writes it: interface names quoted, prefixes as CIDRs, verdicts as `jump X`. */
function nftValue(v: unknown, type: NftType | undefined): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return type === 'ifname' ? ifKey(v) : type === 'inet_proto' ? String(PROTOCOL_NUMBERS[v] ?? v) : v;
  const o = v as { jump?: { target?: string }; concat?: unknown[]; prefix?: { addr: string; len: number }; return?: null; drop?: null; accept?: null } | null;
  if (o?.jump?.target !== undefined) return `jump ${o.jump.target}`;
  for (const verdict of ['return', 'drop', 'accept'] as const) if (o && verdict in o) return verdict;
  if (o?.prefix) return `${o.prefix.addr}/${o.prefix.len}`;
  if (o?.concat) return o.concat.map((x, i) => nftValue(x, Array.isArray(type) ? type[i] : undefined)).join(' . ');
  return JSON.stringify(v);
}

/** A map's [key, value] or a set's key (value ''), as nft writes them. */
function element(e: unknown, s: NftSetJson): [string, string] {
  if (s.map !== undefined && Array.isArray(e)) return [nftValue(e[0], s.type), nftValue(e[1], s.map)];
  return [nftValue(e, s.type), ''];
}

/**
 * Cirrus's tables per family: chain names, and sets and maps with their elements. With
 * `all`, everything in two listings; without, the fixed sets and maps one listing each,
 * leaving out the policy rule maps: listing every map walks their elements too (0.5 s at
 * 20,000), and the caller knows what it last wrote into them.
 */
async function readNft(all: boolean, nft: NftSession): Promise<KernelState['nft']> {
  const chains = await nft.run('list chains', true);
  if (chains.code !== 0) throw new Error(`nft list chains: ${chains.stderr.trim()}`);
  const tables: Partial<Record<NftFamily, NftTable>> = {};
  for (const o of (JSON.parse(chains.stdout) as NftJson).nftables) {
    const c = o.chain;
    if (c?.table !== NFT_TABLE || !NFT_FAMILIES.includes(c.family as NftFamily)) continue;
    (tables[c.family as NftFamily] ??= { maps: new Map(), chains: new Map(), ruleMapsRead: all }).chains.set(c.name, []);
  }
  const present = NFT_FAMILIES.filter((f) => tables[f]);
  const lists = all
    ? [nft.run('list maps', true), nft.run('list sets', true)]
    : present.flatMap((family) => fixedSets(family).map(([name, kind]) => nft.run(`list ${kind} ${family} ${NFT_TABLE} ${name}`, true)));
  for (const r of await Promise.all(lists)) {
    if (r.code !== 0) continue; // a fixed set missing: the table is stale (below)
    for (const o of (JSON.parse(r.stdout) as NftJson).nftables) {
      const set = o.map ?? o.set;
      const t = set?.table === NFT_TABLE ? tables[set.family as NftFamily] : undefined;
      if (t) t.maps.set(set!.name, new Map((set!.elem ?? []).map((e) => element(e, set!))));
    }
  }
  const out: KernelState['nft'] = { ip: 'missing', arp: 'missing' };
  for (const family of present) {
    const t = tables[family]!;
    // A table without the current layout's base chains or fixed sets (an older agent's, or
    // changed by hand) is replaced whole.
    const current = baseChains(family).every((c) => t.chains.has(c)) && fixedSets(family).every(([n]) => t.maps.has(n));
    for (const c of baseChains(family)) t.chains.delete(c);
    out[family] = current ? t : 'stale';
  }
  return out;
}

/** A floating IP's translation to one back end, in a conntrack zone. */
export interface Translation {
  zone: number;
  floating: string;
  backend: string;
}

/** `conntrack -D` once per filter. */
async function deleteConntrack(filters: string[][]): Promise<BatchError[]> {
  const errors: BatchError[] = [];
  for (const f of filters) {
    const r = await run('conntrack', ['-D', ...f]);
    // Exit 1 with "0 flow entries" is nothing to delete, not a failure.
    if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) errors.push({ line: 0, command: `conntrack -D ${f.join(' ')}`, message: r.stderr.trim() });
  }
  return errors;
}

export class LinuxKernel implements Kernel {
  async read(owns: (ifname: string) => boolean, all = true): Promise<KernelState> {
    // One `ip` process for the six dumps, links in brief form: at a thousand ports this is
    // most of a no-change reconcile, and under load each process more is tens of ms of a
    // failover. No -4: next-hop groups have no address family (-4 hides them); routes and
    // rules list IPv4 without it, neighbours and addresses both families (ours are IPv4).
    const [r, nft] = await Promise.all([
      run('ip', ['-j', '-br', '-batch', '-'], `link show\nroute show table all\nrule show\nneigh show proto ${CIRRUS_PROTO}\naddr show\nnexthop show proto ${CIRRUS_PROTO}\n`),
      readNft(all, this.nftSession),
    ]);
    const parts = r.stdout.trim().split('\n');
    if (r.code !== 0 || parts.length !== 6) throw new Error(`ip dump failed: ${r.stderr.trim() || `${parts.length} parts`}`);
    const [links, routes, rules, neighs, addrs] = parts.slice(0, 5).map((p, i) => (i === 1 ? parseIpRoutes(p) : JSON.parse(p))) as [IpLink[], IpRoute[], IpRule[], IpNeigh[], IpAddr[]];
    const addresses = addrs.find((a) => a.ifname === SERVICE_DEV)?.addr_info?.filter((a) => a.prefixlen === 32 && !a.local.includes(':')).map((a) => a.local) ?? [];
    const state: KernelState = { links: new Map(), routes: new Map(), nexthops: new Map(parseNexthops(parts[5]!).map((n) => [n.id, n])), rules: new Map(), neighs: new Map(), addresses: new Set(addresses), nft };
    for (const l of links) if (owns(l.ifname)) state.links.set(l.ifname, { up: l.flags?.includes('UP') ?? false, identity: l.address });
    for (const r of routes) {
      const table = Number(r.table);
      if (!isOwnedTable(table)) continue;
      const route: Route = {
        table,
        type: r.type === 'local' || r.type === 'unreachable' ? r.type : 'unicast',
        dst: r.dst.endsWith('/32') ? r.dst.slice(0, -3) : r.dst,
        ...(r.dev ? { dev: r.dev } : {}),
        ...(r.encap === 'ip' && r.id !== undefined && r.encap_dst ? { encap: { vni: r.id, dst: r.encap_dst } } : {}),
        ...(r.nhid !== undefined ? { nhid: r.nhid } : {}),
        ...(r.gateway && !r.encap ? { via: r.gateway } : {}),
      };
      state.routes.set(routeKey(route), route);
    }
    for (const r of rules) {
      const table = Number(r.table);
      if (r.priority === UNDERLAY_RULE_PREF && r.table === 'main' && r.iif === 'lo' && r.ipproto === 'udp' && r.dport === VXLAN_PORT) {
        const rule: Rule = { pref: r.priority, underlay: true, table: MAIN_TABLE };
        state.rules.set(ruleKey(rule), rule);
        continue;
      }
      if (!isOwnedTable(table)) continue;
      let rule: Rule;
      if (r.priority === NETWORK_RULE_PREF && r.fwmark) rule = { pref: r.priority, table, fwmark: Number(r.fwmark) };
      else if (r.priority === NETWORK_RULE_PREF && r.iif) rule = { pref: r.priority, table, iif: r.iif };
      else if (r.priority === TUNNEL_RULE_PREF && r.tun_id !== undefined) rule = { pref: r.priority, table, tunId: r.tun_id };
      else continue;
      state.rules.set(ruleKey(rule), rule);
    }
    for (const n of neighs) {
      if (n.dst.includes(':')) continue;
      const neigh: Neigh = { dev: n.dev, ip: n.dst, mac: n.lladdr ?? '' };
      state.neighs.set(neighKey(neigh), neigh);
    }
    return state;
  }

  private readonly namespaces = new NamespaceConfigurator();
  private readonly nftSession = new NftSession();

  async batch(lines: string[]): Promise<BatchError[]> {
    if (lines.length === 0) return [];
    const r = await run('ip', ['-force', '-batch', '-'], lines.join('\n') + '\n');
    const errors = parseBatchErrors(r.stderr, lines);
    if (r.code !== 0 && errors.length === 0) errors.push({ line: 0, command: 'ip -force -batch -', message: r.stderr.trim() || `exit ${r.code}` });
    return errors;
  }

  async nft(lines: string[]): Promise<BatchError[]> {
    if (lines.length === 0) return [];
    const r = await this.nftSession.run(lines.join('\n') + '\n');
    return r.code === 0 ? [] : [{ line: 0, command: 'nft -f -', message: r.stderr.trim() || `exit ${r.code}` }];
  }

  async flushConntrack(zones: number[]): Promise<BatchError[]> {
    return deleteConntrack(zones.map((zone) => ['-w', String(zone)]));
  }

  async forgetTranslations(items: Translation[]): Promise<BatchError[]> {
    return deleteConntrack(items.map((t) => ['-w', String(t.zone), '--orig-dst', t.floating, '--reply-src', t.backend]));
  }

  configureWorkloads(items: WorkloadConfig[]): Promise<Map<string, string>> {
    return items.length ? this.namespaces.configure(items) : Promise.resolve(new Map());
  }

  close(): void {
    this.namespaces.close();
    this.nftSession.close();
  }

  readSysctl(path: string): string | undefined {
    try {
      return fs.readFileSync(`/proc/sys/${path}`, 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  writeSysctl(path: string, value: string): void {
    fs.writeFileSync(`/proc/sys/${path}`, value);
  }
}
