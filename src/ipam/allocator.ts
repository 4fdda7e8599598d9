// Address allocation inside a network's subnets: next-fit from a per-subnet cursor, in the
// subnet's direction (TF: from the end, or from the start with addr_from_start), skipping
// reserved and taken addresses. The cursor is only a hint; the taken set is the truth.

import { cidrContains, cidrLast, formatIpv4 } from '../util/ipv4.js';
import type { Subnet } from './subnets.js';

export type IsTaken = (address: string) => boolean;

export function isReserved(s: Subnet, ip: number): boolean {
  return ip === s.cidr.base || ip === cidrLast(s.cidr) || ip === s.gateway || ip === s.dns;
}

export function subnetOf(subnets: Subnet[], ip: number): Subnet | undefined {
  return subnets.find((s) => cidrContains(s.cidr, ip));
}

export class Allocator {
  private readonly cursors = new Map<string, number>();

  /** Picks a free address of `s`, or undefined when the subnet is exhausted. */
  allocate(s: Subnet, isTaken: IsTaken): string | undefined {
    const ordered = [...s.pools].sort((a, b) => a.start - b.start);
    const lo = ordered[0]!.start;
    const hi = ordered[ordered.length - 1]!.end;
    const step = s.addrFromStart ? 1 : -1;
    const first = s.addrFromStart ? lo : hi;
    const hint = this.cursors.get(s.uuid);
    const start = hint !== undefined && hint >= lo && hint <= hi ? hint : first;
    const span = hi - lo + 1;
    for (let i = 0, ip = start; i < span; i++, ip += step) {
      if (ip > hi) ip = lo;
      if (ip < lo) ip = hi;
      if (!inPools(ordered, ip) || isReserved(s, ip)) continue;
      const address = formatIpv4(ip);
      if (isTaken(address)) continue;
      this.cursors.set(s.uuid, ip + step);
      return address;
    }
    return undefined;
  }
}

function inPools(pools: { start: number; end: number }[], ip: number): boolean {
  return pools.some((p) => ip >= p.start && ip <= p.end);
}
