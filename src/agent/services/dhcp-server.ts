// The DHCP server's decisions (RFC 2131), pure: given a client's message and the binding
// of the interface it came in on (its configuration: one address, the VMI's instance-ip),
// what to answer and where, and the lease it leaves. The address never comes from a pool:
// the configuration decides it, so a lease is a record of what the client was told (for
// introspect), and a client holding an address the configuration no longer gives it is
// told NAK at its next renewal.

import { BOOTREQUEST, BROADCAST_FLAG, type DhcpMessage, type DhcpReply, DhcpType, Opt, addr, classlessRoutes, maskOf, optionAddress, u16, u32 } from './dhcp-codec.js';
import { formatIpv4, parseIpv4 } from '../../util/ipv4.js';

/** What one interface's client is given. */
export interface DhcpBinding {
  /** The port (interface uuid): leases are per port. */
  key: string;
  mac: string;
  address: string;
  prefixLen: number;
  /** The server identifier (the subnet's gateway, else its DNS address). */
  server: string;
  gateway?: string;
  dnsServers: string[];
  domainName?: string;
  mtu: number;
  /** Seconds; 0xffffffff is infinite. */
  leaseTime: number;
  /** Host routes (option 121); the default route via the gateway is added to them. */
  routes: { prefix: string; nextHop: string }[];
}

export type DhcpOutcome = 'offer' | 'ack' | 'nak' | 'inform' | 'release' | 'decline' | 'ignored' | 'unknown_client';

export interface Lease {
  key: string;
  mac: string;
  address: string;
  state: 'offered' | 'bound' | 'released' | 'declined';
  /** When it entered this state (ms since the epoch). */
  since: number;
  /** Bound leases: when they end (absent: infinite). */
  expires?: number;
  renewals: number;
}

export interface DhcpVerdict {
  outcome: DhcpOutcome;
  /** Why nothing was answered (ignored). */
  reason?: string;
  reply?: { message: DhcpReply; ip: string; mac: string };
}

const ZERO = '0.0.0.0';
const BROADCAST_IP = '255.255.255.255';
const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
export const INFINITE_LEASE = 0xffffffff;

export class DhcpServer {
  private readonly leases = new Map<string, Lease>();

  handle(m: DhcpMessage, b: DhcpBinding, now: number): DhcpVerdict {
    if (m.op !== BOOTREQUEST) return { outcome: 'ignored', reason: 'not a request' };
    if (m.giaddr !== ZERO) return { outcome: 'ignored', reason: 'relayed (no relays on a port)' };
    if (m.chaddr !== b.mac) return { outcome: 'unknown_client', reason: `chaddr ${m.chaddr} is not the interface's MAC` };
    switch (m.type) {
      case DhcpType.DISCOVER:
        this.set(b, 'offered', now);
        return { outcome: 'offer', reply: this.reply(DhcpType.OFFER, m, b) };
      case DhcpType.REQUEST:
        return this.request(m, b, now);
      case DhcpType.INFORM:
        return { outcome: 'inform', reply: this.reply(DhcpType.ACK, m, b, true) };
      case DhcpType.RELEASE:
        if (m.ciaddr !== b.address) return { outcome: 'ignored', reason: `release of ${m.ciaddr}, not the interface's address` };
        this.set(b, 'released', now);
        return { outcome: 'release' };
      case DhcpType.DECLINE:
        this.set(b, 'declined', now);
        return { outcome: 'decline' };
      default:
        return { outcome: 'ignored', reason: `a server's message type (${m.type})` };
    }
  }

  /** SELECTING (server id + requested address), INIT-REBOOT (requested address), RENEWING/REBINDING (ciaddr). */
  private request(m: DhcpMessage, b: DhcpBinding, now: number): DhcpVerdict {
    const serverId = optionAddress(m, Opt.SERVER_ID);
    const requested = optionAddress(m, Opt.REQUESTED_IP);
    if (serverId !== undefined && serverId !== b.server) {
      // The client took another server's offer.
      if (this.leases.get(b.key)?.state === 'offered') this.leases.delete(b.key);
      return { outcome: 'ignored', reason: `the client chose server ${serverId}` };
    }
    const wanted = serverId !== undefined || requested !== undefined ? requested : m.ciaddr !== ZERO ? m.ciaddr : undefined;
    if (wanted === undefined) return { outcome: 'ignored', reason: 'request names no address' };
    if (wanted !== b.address) return { outcome: 'nak', reply: this.reply(DhcpType.NAK, m, b) };
    const had = this.leases.get(b.key);
    const renewal = had?.state === 'bound' && had.address === b.address;
    this.set(b, 'bound', now, renewal ? had.renewals + 1 : 0);
    return { outcome: 'ack', reply: this.reply(DhcpType.ACK, m, b) };
  }

  private set(b: DhcpBinding, state: Lease['state'], now: number, renewals = 0): void {
    const expires = state === 'bound' && b.leaseTime !== INFINITE_LEASE ? { expires: now + b.leaseTime * 1000 } : {};
    this.leases.set(b.key, { key: b.key, mac: b.mac, address: b.address, state, since: now, ...expires, renewals });
  }

  private reply(type: DhcpType, m: DhcpMessage, b: DhcpBinding, inform = false): NonNullable<DhcpVerdict['reply']> {
    const options: [number, Buffer][] = [];
    if (type === DhcpType.NAK) options.push([Opt.MESSAGE, Buffer.from(`${b.address} is this interface's address`)]);
    else {
      const mask = maskOf(b.prefixLen);
      options.push([Opt.SUBNET_MASK, addr(mask)]);
      options.push([Opt.BROADCAST, addr(formatIpv4((parseIpv4(b.address)! | ~parseIpv4(mask)!) >>> 0))]);
      if (b.gateway) options.push([Opt.ROUTER, addr(b.gateway)]);
      // With option 121 a client ignores option 3 (RFC 3442): the default route goes with the others.
      const routes = [...b.routes, ...(b.gateway ? [{ prefix: '0.0.0.0/0', nextHop: b.gateway }] : [])];
      if (b.routes.length) options.push([Opt.CLASSLESS_ROUTES, classlessRoutes(routes)]);
      if (b.dnsServers.length) options.push([Opt.DNS, addr(...b.dnsServers)]);
      if (b.domainName) options.push([Opt.DOMAIN_NAME, Buffer.from(b.domainName)]);
      options.push([Opt.MTU, u16(b.mtu)]);
      if (!inform) {
        const infinite = b.leaseTime === INFINITE_LEASE;
        options.push([Opt.LEASE_TIME, u32(b.leaseTime)]);
        options.push([Opt.RENEWAL_TIME, u32(infinite ? INFINITE_LEASE : Math.floor(b.leaseTime / 2))]);
        options.push([Opt.REBINDING_TIME, u32(infinite ? INFINITE_LEASE : Math.floor((b.leaseTime * 7) / 8))]);
      }
    }
    const message: DhcpReply = { type, xid: m.xid, flags: m.flags, ciaddr: m.ciaddr, yiaddr: type === DhcpType.NAK || inform ? ZERO : b.address, server: b.server, chaddr: m.chaddr, options };
    // Where it goes (RFC 2131 4.1): NAKs are broadcast; a client with an address gets it there; the broadcast flag asks for broadcast.
    if (type === DhcpType.NAK || (m.ciaddr === ZERO && m.flags & BROADCAST_FLAG)) return { message, ip: BROADCAST_IP, mac: BROADCAST_MAC };
    return { message, ip: m.ciaddr !== ZERO ? m.ciaddr : b.address, mac: m.chaddr };
  }

  /** Leases of the given ports only (the others' interfaces are gone). */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.leases.keys()) if (!keys.has(k)) this.leases.delete(k);
  }

  list(): Lease[] {
    return [...this.leases.values()];
  }
}
