// virtual-network: subnets (IPAM), the network id, an explicit VNI's uniqueness.

import { subnetsOf } from '../../ipam/subnets.js';
import { completeIpamRefs } from '../../ipam/subnets.js';
import { subnetOf } from '../../ipam/allocator.js';
import { parseIpv4 } from '../../util/ipv4.js';
import { Conflict } from '../errors.js';
import { IP_ALLOC_OWNER, type StoredObject } from '../object.js';
import type { HookContext, TypeHooks } from './context.js';

type Json = Record<string, unknown>;

const vniOf = (obj: StoredObject): number | undefined =>
  (obj.props['virtual_network_properties'] as Json | undefined)?.['vxlan_network_identifier'] as number | undefined;

export const networkHooks: TypeHooks = {
  prepare(ctx, obj, old) {
    if (obj.refs['network_ipam_refs']) obj.refs['network_ipam_refs'] = completeIpamRefs(obj.refs['network_ipam_refs'], 'virtual-network.network_ipam_refs');
    if (old) checkAddressesStillFit(ctx, obj);
    const id = old?.props['virtual_network_network_id'] as number | undefined;
    if (id === undefined) {
      const n = ctx.m.nextFreeId('network', 1);
      ctx.m.claimId('network', n, obj.uuid);
      obj.props['virtual_network_network_id'] = n;
    } else obj.props['virtual_network_network_id'] = id;
    const vni = vniOf(obj);
    const oldVni = old && vniOf(old);
    if (vni !== oldVni) {
      if (oldVni !== undefined) ctx.m.releaseId('vni', oldVni);
      if (vni !== undefined) {
        const holder = ctx.view.idsOf('vni').get(vni)?.owner;
        if (holder !== undefined && holder !== obj.uuid) {
          const field = 'virtual-network.virtual_network_properties.vxlan_network_identifier';
          throw new Conflict(`${field}: VNI ${vni} is already used by virtual-network ${holder}`, field);
        }
        ctx.m.claimId('vni', vni, obj.uuid);
      }
    }
  },
  release(ctx, obj) {
    ctx.m.releaseId('network', obj.props['virtual_network_network_id'] as number);
    const vni = vniOf(obj);
    if (vni !== undefined) ctx.m.releaseId('vni', vni);
    // Reservations made with ip-alloc belong to the network; object-held addresses block
    // the delete through their references.
    for (const [address, taken] of ctx.view.ipsOf(obj.uuid)) {
      if (taken.owner === IP_ALLOC_OWNER) ctx.m.releaseIp(obj.uuid, address);
    }
  },
};

/** A subnet change must not strand an address in use. */
function checkAddressesStillFit(ctx: HookContext, obj: StoredObject): void {
  const subnets = subnetsOf(obj);
  const stranded: string[] = [];
  for (const [address, taken] of ctx.view.ipsOf(obj.uuid)) {
    if (!subnetOf(subnets, parseIpv4(address)!)) stranded.push(`${address} (${taken.owner})`);
  }
  if (stranded.length) {
    throw new Conflict(
      `virtual-network.network_ipam_refs: addresses still in use outside the new subnets: ${stranded.slice(0, 10).join(', ')}${stranded.length > 10 ? ', ...' : ''}`,
      'virtual-network.network_ipam_refs',
    );
  }
}
