// floating-ip-pool (subnets of its network) and floating-ip (an address of the pool's network).

import { subnetsOf } from '../../ipam/subnets.js';
import { isIpv4 } from '../../util/ipv4.js';
import { BadRequest } from '../errors.js';
import { claimAddress } from './addresses.js';
import type { TypeHooks } from './context.js';
import { keepImmutable } from './interface.js';

type Json = Record<string, unknown>;

const poolSubnets = (pool: { props: Json }): string[] | undefined =>
  (pool.props['floating_ip_pool_subnets'] as Json | undefined)?.['subnet_uuid'] as string[] | undefined;

export const floatingIpPoolHooks: TypeHooks = {
  prepare(ctx, obj) {
    const wanted = poolSubnets(obj);
    if (!wanted) return;
    const known = new Set(subnetsOf(ctx.m.lookup(obj.parent_uuid!)!).map((s) => s.uuid));
    wanted.forEach((u, i) => {
      const field = `floating-ip-pool.floating_ip_pool_subnets.subnet_uuid[${i}]`;
      if (!known.has(u)) throw new BadRequest(`${field}: ${u} is not a subnet of the pool's network`, field);
    });
  },
};

export const floatingIpHooks: TypeHooks = {
  prepare(ctx, obj, old) {
    const fixed = obj.props['floating_ip_fixed_ip_address'];
    if (fixed !== undefined && !isIpv4(fixed as string)) {
      const field = 'floating-ip.floating_ip_fixed_ip_address';
      throw new BadRequest(`${field}: '${String(fixed)}' is not an IPv4 address`, field);
    }
    if (obj.props['floating_ip_address_family'] === 'v6') {
      throw new BadRequest('floating-ip.floating_ip_address_family: IPv6 is not supported yet', 'floating-ip.floating_ip_address_family');
    }
    if (old) return keepImmutable(obj, old, 'floating_ip_address');
    const pool = ctx.m.lookup(obj.parent_uuid!)!;
    const network = ctx.m.lookup(pool.parent_uuid!)!;
    const subnetUuids = poolSubnets(pool);
    const { address } = claimAddress(ctx, network, obj.uuid, {
      address: obj.props['floating_ip_address'] as string | undefined,
      ...(subnetUuids ? { subnetUuids } : {}),
      addressField: 'floating-ip.floating_ip_address',
      subnetField: 'floating-ip.floating_ip_pool_subnets',
    });
    obj.props['floating_ip_address'] = address;
  },
  release(ctx, obj) {
    const pool = ctx.view.get(obj.parent_uuid!)!.obj;
    ctx.m.releaseIp(pool.parent_uuid!, obj.props['floating_ip_address'] as string);
  },
};
