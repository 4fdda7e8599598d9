// The names the agent's DNS service answers, computed from the host's document (pure).
//
// Scheme: an instance (virtual machine) `web1` with an address in network
// `default-domain:admin:red` is `web1.red.admin.<suffix>`; inside its own network also just
// `web1`. The reverse name of its address (PTR) gives the long name. A network sees its own
// instances and those of the networks leaked into it (a policy lets them talk); nothing of
// isolated networks. Names under the suffix that do not exist are NXDOMAIN; any other name
// is REFUSED: the service is authoritative for instances, never a resolver for the outside.

import type { EntryValue, LeakEntry, NetworkEntry, PortEntry, RouteEntry } from '../../control/protocol.js';
import { type Cidr, cidrContains, parseCidr, parseIpv4 } from '../../util/ipv4.js';
import { CLASS_IN, type DnsAnswer, type DnsQuery, RR, Rcode } from './dns-codec.js';

export const DEFAULT_DNS_SUFFIX = 'cirrus.internal';
/** Seconds a client may cache an answer: names follow the configuration closely. */
export const DNS_TTL = 5;

const LABEL = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/;
/** A name as a DNS label (lower case), or undefined when it cannot be one. */
export const dnsLabel = (name: string): string | undefined => (LABEL.test(name.toLowerCase()) ? name.toLowerCase() : undefined);

/** A network's domain: <network>.<project>.<suffix> from its fq_name domain:project:network. */
export function networkDomain(fqName: string, suffix: string): string | undefined {
  const parts = fqName.split(':');
  if (parts.length !== 3) return undefined;
  const net = dnsLabel(parts[2]!);
  const project = dnsLabel(parts[1]!);
  return net && project ? `${net}.${project}.${suffix}` : undefined;
}

interface NetworkNames {
  domain?: string;
  subnets: Cidr[];
  /** Long name → addresses. */
  byName: Map<string, string[]>;
  /** Short name → addresses (own network only). */
  byShort: Map<string, string[]>;
  /** Address → long names. */
  byAddress: Map<string, string[]>;
  peers: string[];
}

export interface DnsResult {
  rcode: Rcode;
  answers: DnsAnswer[];
  authoritative: boolean;
}

const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
  const list = m.get(k);
  if (!list) m.set(k, [v]);
  else if (!list.includes(v)) list.push(v);
};

export class NameTable {
  private readonly networks = new Map<string, NetworkNames>();

  constructor(
    entries: Iterable<[string, EntryValue]>,
    readonly suffix: string = DEFAULT_DNS_SUFFIX,
  ) {
    const instances: { network: string; name: string; address: string }[] = [];
    const leaks: LeakEntry[] = [];
    for (const [key, value] of entries) {
      switch (key[0]) {
        case 'n': {
          const n = value as NetworkEntry;
          const domain = networkDomain(n.name, suffix);
          const subnets = n.subnets.map(parseCidr).filter((c): c is Cidr => typeof c !== 'string');
          this.networks.set(n.uuid, { ...(domain ? { domain } : {}), subnets, byName: new Map(), byShort: new Map(), byAddress: new Map(), peers: [] });
          break;
        }
        case 'p': {
          const p = value as PortEntry;
          if (p.vm && p.address && !p.pending) instances.push({ network: p.network, name: p.vm.name, address: p.address });
          break;
        }
        case 'r': {
          const r = value as RouteEntry;
          if (r.name) instances.push({ network: r.network, name: r.name, address: r.address });
          break;
        }
        case 'l':
          leaks.push(value as LeakEntry);
          break;
      }
    }
    for (const i of instances) {
      const n = this.networks.get(i.network);
      const label = dnsLabel(i.name);
      if (!n?.domain || !label) continue;
      const long = `${label}.${n.domain}`;
      push(n.byName, long, i.address);
      push(n.byShort, label, i.address);
      push(n.byAddress, i.address, long);
    }
    for (const l of leaks) this.networks.get(l.network)?.peers.push(l.peer);
  }

  /** The answer to a query from a workload of `network`. */
  resolve(network: string, q: Pick<DnsQuery, 'name' | 'qtype' | 'qclass' | 'opcode'>): DnsResult {
    const refused: DnsResult = { rcode: Rcode.REFUSED, answers: [], authoritative: false };
    if (q.opcode !== 0) return { rcode: Rcode.NOTIMP, answers: [], authoritative: false };
    const own = this.networks.get(network);
    if (!own || q.qclass !== CLASS_IN) return refused;
    // Own network first: its names win over a peer's.
    const visible = [own, ...own.peers.map((p) => this.networks.get(p)).filter((n): n is NetworkNames => n !== undefined)];
    const found = (values: string[] | undefined, type: DnsAnswer['type']): DnsResult => {
      if (!values) return { rcode: Rcode.NXDOMAIN, answers: [], authoritative: true };
      const wanted = q.qtype === type || q.qtype === RR.ANY;
      return { rcode: Rcode.NOERROR, answers: wanted ? values.map((data) => ({ type, ttl: DNS_TTL, data })) : [], authoritative: true };
    };
    const reverse = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(q.name);
    if (reverse) {
      const address = reverse.slice(1, 5).reverse().join('.');
      const ip = parseIpv4(address);
      if (ip === undefined || !visible.some((n) => n.subnets.some((c) => cidrContains(c, ip)))) return refused;
      return found(visible.map((n) => n.byAddress.get(address)).find((v) => v), RR.PTR);
    }
    if (q.name === this.suffix || q.name.endsWith(`.${this.suffix}`)) return found(visible.map((n) => n.byName.get(q.name)).find((v) => v), RR.A);
    const short = own.byShort.get(q.name);
    return short ? found(short, RR.A) : refused;
  }

  /** Every published name of a network as seen from it (introspect). */
  names(network: string): { domain?: string; names: { name: string; addresses: string[] }[]; peers: string[] } | undefined {
    const n = this.networks.get(network);
    if (!n) return undefined;
    return { ...(n.domain ? { domain: n.domain } : {}), names: [...n.byName].map(([name, addresses]) => ({ name, addresses })), peers: n.peers };
  }
}
