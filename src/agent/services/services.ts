// The agent's DHCP and DNS services for the workloads bound to its host (TF's vRouter agent
// serves both). Packets come from the packet tap with the interface they arrived on: the
// interface names the port, the port names the network, so overlapping networks never mix
// and a client can only ever get its own interface's configuration. Each packet is
// checked (malformed ones are dropped and counted), rate-limited per interface and
// service, decided by the pure protocol modules, and answered out of the same interface.

import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';
import { type EntryValue, type NetworkEntry, type PortEntry, netKey, portKey } from '../../control/protocol.js';
import type { PortState } from '../host-state.js';
import { dhcpBinding } from './binding.js';
import { decodeDhcp, encodeDhcp } from './dhcp-codec.js';
import { type DhcpOutcome, DhcpServer, type Lease } from './dhcp-server.js';
import { Rcode, decodeDnsQuery, encodeDnsResponse } from './dns-codec.js';
import { DEFAULT_DNS_SUFFIX, NameTable } from './dns-names.js';
import { PacketTap, type TappedPacket } from './packet-tap.js';
import { DEFAULT_SERVICE_RATE, RateLimiter } from './rate-limit.js';
import { buildUdp, parseUdp } from './udp.js';

export interface ServiceOptions {
  /** Instances are <vm>.<network>.<project>.<dnsSuffix>. */
  dnsSuffix?: string;
  /** Packets per second per interface and service (bursts of as many). */
  rate?: number;
}

const DHCP_SERVER_PORT = 67;
const DHCP_CLIENT_PORT = 68;
const DNS_PORT = 53;
const RECENT_DROPS = 20;

type DnsOutcome = 'answered' | 'nxdomain' | 'refused' | 'notimp';
type Service = 'dhcp' | 'dns';

/** Which service a packet is for, by its UDP destination port (read before the packet is checked). */
function serviceOf(ip: Buffer): Service {
  const at = ip.length ? (ip[0]! & 15) * 4 + 2 : 0;
  return at && ip.length >= at + 2 && ip.readUInt16BE(at) === DNS_PORT ? 'dns' : 'dhcp';
}

/** What a port's interface is, for the services. */
interface ServicePort {
  vmiUuid: string;
  network: string;
}

export class AgentServices {
  readonly dnsSuffix: string;
  private readonly tap: PacketTap;
  private readonly limiter: RateLimiter;
  private readonly dhcp = new DhcpServer();
  private ports = new Map<string, ServicePort>();
  private names: NameTable | undefined;
  private readonly drops: { at: string; service: Service; interface: string; reason: string }[] = [];
  private readonly m;

  constructor(
    private readonly doc: () => ReadonlyMap<string, EntryValue> | undefined,
    opts: ServiceOptions,
    registry: Registry,
  ) {
    this.dnsSuffix = (opts.dnsSuffix ?? DEFAULT_DNS_SUFFIX).toLowerCase().replace(/\.$/, '');
    this.limiter = new RateLimiter(opts.rate ?? DEFAULT_SERVICE_RATE);
    this.tap = new PacketTap((p) => this.handle(p));
    const registers = [registry];
    this.m = {
      dhcp: new Counter({ name: 'cirrus_agent_dhcp_packets_total', help: 'DHCP packets from workloads by outcome (offer, ack, nak, inform, release, decline, ignored, unknown_client, not_served, malformed, rate_limited)', labelNames: ['outcome'], registers }),
      dns: new Counter({ name: 'cirrus_agent_dns_queries_total', help: 'DNS queries from workloads by outcome (answered, nxdomain, refused, notimp, malformed, rate_limited)', labelNames: ['outcome'], registers }),
    };
  }

  start(): void {
    this.tap.start();
  }

  stop(): void {
    this.tap.stop();
  }

  /** The host's ports (after each computation of the host state): which interface is which port. */
  setPorts(ports: PortState[]): void {
    this.ports = new Map(ports.filter((p) => p.registration.enabled).map((p) => [p.hostIf, { vmiUuid: p.vmiUuid, network: p.network }]));
    this.tap.setInterfaces([...this.ports.keys()]);
    this.dhcp.retain(new Set([...this.ports.values()].map((p) => p.vmiUuid)));
    this.limiter.retain((key) => this.ports.has(key.slice(0, key.lastIndexOf('/'))));
  }

  /** The document changed: names are recomputed when next asked. */
  documentChanged(): void {
    this.names = undefined;
  }

  /** One packet from the tap (public for tests and benchmarks). */
  handle(p: TappedPacket, now = Date.now()): void {
    const port = this.ports.get(p.ifname);
    if (!port) return;
    const service = serviceOf(p.ip);
    const udp = parseUdp(p.ip);
    if (typeof udp === 'string') return this.drop(service, p.ifname, 'malformed', udp, now);
    if (service === 'dns' && !this.network(port.network)?.serviceAddresses.includes(udp.dst)) return; // another server's query, forwarded as usual
    if (service === 'dhcp' && (udp.dport !== DHCP_SERVER_PORT || udp.sport !== DHCP_CLIENT_PORT)) return this.drop(service, p.ifname, 'malformed', `DHCP from port ${udp.sport}`, now);
    if (!this.limiter.take(`${p.ifname}/${service}`, now)) return this.drop(service, p.ifname, 'rate_limited', '', now);
    if (service === 'dhcp') this.answerDhcp(p, port, udp.payload, now);
    else this.answerDns(p, port, udp, now);
  }

  private answerDhcp(p: TappedPacket, port: ServicePort, payload: Buffer, now: number): void {
    const msg = decodeDhcp(payload);
    if (typeof msg === 'string') return this.drop('dhcp', p.ifname, 'malformed', msg, now);
    const entry = this.doc()?.get(portKey(port.vmiUuid)) as PortEntry | undefined;
    const binding = entry ? dhcpBinding(entry, this.network(port.network), this.dnsSuffix) : 'no configuration';
    if (typeof binding === 'string') return this.drop('dhcp', p.ifname, 'not_served', binding, now);
    const verdict = this.dhcp.handle(msg, binding, now);
    if (verdict.reason) this.remember('dhcp', p.ifname, verdict.reason, now);
    this.count('dhcp', verdict.outcome);
    if (!verdict.reply) return;
    const ip = buildUdp({ src: binding.server, dst: verdict.reply.ip, sport: DHCP_SERVER_PORT, dport: DHCP_CLIENT_PORT, payload: encodeDhcp(verdict.reply.message) });
    this.tap.send(p.ifname, verdict.reply.mac, ip);
  }

  private answerDns(p: TappedPacket, port: ServicePort, udp: { src: string; dst: string; sport: number; payload: Buffer }, now: number): void {
    const q = decodeDnsQuery(udp.payload);
    if (typeof q === 'string') return this.drop('dns', p.ifname, 'malformed', q, now);
    const r = this.nameTable().resolve(port.network, q);
    const outcome: DnsOutcome = r.rcode === Rcode.NOERROR ? 'answered' : r.rcode === Rcode.NXDOMAIN ? 'nxdomain' : r.rcode === Rcode.NOTIMP ? 'notimp' : 'refused';
    this.count('dns', outcome);
    const payload = encodeDnsResponse(q, r.rcode, r.answers, r.authoritative);
    this.tap.send(p.ifname, p.srcMac, buildUdp({ src: udp.dst, dst: udp.src, sport: DNS_PORT, dport: udp.sport, payload }));
  }

  private network(uuid: string): NetworkEntry | undefined {
    return this.doc()?.get(netKey(uuid)) as NetworkEntry | undefined;
  }

  private nameTable(): NameTable {
    this.names ??= new NameTable(this.doc() ?? [], this.dnsSuffix);
    return this.names;
  }

  private count(service: Service, outcome: DhcpOutcome | DnsOutcome | 'malformed' | 'rate_limited' | 'not_served'): void {
    (service === 'dhcp' ? this.m.dhcp : this.m.dns).inc({ outcome });
  }

  private drop(service: Service, ifname: string, outcome: 'malformed' | 'rate_limited' | 'not_served', reason: string, now: number): void {
    this.count(service, outcome);
    if (outcome !== 'rate_limited') this.remember(service, ifname, `${outcome}: ${reason}`, now);
  }

  private remember(service: Service, ifname: string, reason: string, now: number): void {
    this.drops.push({ at: new Date(now).toISOString(), service, interface: ifname, reason });
    if (this.drops.length > RECENT_DROPS) this.drops.shift();
  }

  /** Introspect's /dhcp: the leases and the last packets not answered, with why. */
  dhcpView(): { leases: (Lease & { interface?: string })[]; recent: AgentServices['drops'] } {
    const ifOf = new Map([...this.ports].map(([ifname, p]) => [p.vmiUuid, ifname]));
    return {
      leases: this.dhcp.list().map((l) => ({ ...l, ...(ifOf.has(l.key) ? { interface: ifOf.get(l.key)! } : {}) })),
      recent: [...this.drops],
    };
  }

  /** Introspect's /dns: per network with ports here, the names it resolves. */
  dnsView(): { suffix: string; networks: { uuid: string; name: string; domain?: string; names: { name: string; addresses: string[] }[]; peers: string[] }[] } {
    const table = this.nameTable();
    const networks = [...new Set([...this.ports.values()].map((p) => p.network))].flatMap((uuid) => {
      const v = table.names(uuid);
      return v ? [{ uuid, name: this.network(uuid)?.name ?? '', ...v }] : [];
    });
    return { suffix: this.dnsSuffix, networks };
  }
}
