// Taking and giving back addresses of a network for instance-ips and floating-ips.

import { isReserved, subnetOf } from '../../ipam/allocator.js';
import { type Subnet, subnetsOf } from '../../ipam/subnets.js';
import { formatCidr, formatIpv4, parseIpv4 } from '../../util/ipv4.js';
import { BadRequest, Conflict } from '../errors.js';
import type { StoredObject } from '../object.js';
import type { HookContext } from './context.js';

export interface AddressRequest {
  /** An explicit address, or undefined to allocate one. */
  address?: string;
  /** Restrict to this subnet. */
  subnetUuid?: string;
  /** Restrict to these subnets (floating-ip pools). */
  subnetUuids?: string[];
  /** Field names for error messages. */
  addressField: string;
  subnetField: string;
}

export function claimAddress(
  ctx: HookContext,
  network: StoredObject,
  owner: string,
  req: AddressRequest,
): { address: string; subnetUuid: string } {
  let subnets = subnetsOf(network);
  const netName = network.fq_name.join(':');
  if (subnets.length === 0) throw new BadRequest(`network ${netName} has no subnet to take an address from`, req.addressField);
  if (req.subnetUuids) subnets = subnets.filter((s) => req.subnetUuids!.includes(s.uuid));
  if (req.subnetUuid) {
    subnets = subnets.filter((s) => s.uuid === req.subnetUuid);
    if (subnets.length === 0) throw new BadRequest(`${req.subnetField}: subnet ${req.subnetUuid} is not a subnet of ${netName}`, req.subnetField);
  }
  if (req.address !== undefined) return claimExplicit(ctx, network, owner, subnets, req);
  for (const s of subnets) {
    const address = ctx.allocator.allocate(s, (a) => ctx.m.isIpTaken(network.uuid, a));
    if (address !== undefined) {
      ctx.m.claimIp(network.uuid, address, owner);
      return { address, subnetUuid: s.uuid };
    }
  }
  const where = subnets.map((s) => formatCidr(s.cidr)).join(', ');
  throw new Conflict(`no free address left in network ${netName} (${where})`, req.addressField);
}

function claimExplicit(
  ctx: HookContext,
  network: StoredObject,
  owner: string,
  subnets: Subnet[],
  req: AddressRequest,
): { address: string; subnetUuid: string } {
  const ip = parseIpv4(req.address!);
  if (ip === undefined) throw new BadRequest(`${req.addressField}: '${req.address}' is not an IPv4 address`, req.addressField);
  const address = formatIpv4(ip);
  const s = subnetOf(subnets, ip);
  const netName = network.fq_name.join(':');
  if (!s) throw new BadRequest(`${req.addressField}: ${address} is not in a subnet of ${netName}`, req.addressField);
  if (isReserved(s, ip)) {
    throw new BadRequest(`${req.addressField}: ${address} is reserved in ${formatCidr(s.cidr)} (network, broadcast, gateway or DNS address)`, req.addressField);
  }
  if (ctx.m.isIpTaken(network.uuid, address)) {
    const holder = ctx.view.ipsOf(network.uuid).get(address)?.owner;
    const by = holder && ctx.view.get(holder) ? ` by ${ctx.view.get(holder)!.obj.type} ${holder}` : '';
    throw new Conflict(`${req.addressField}: ${address} is already in use in network ${netName}${by}`, req.addressField);
  }
  ctx.m.claimIp(network.uuid, address, owner);
  return { address, subnetUuid: s.uuid };
}
