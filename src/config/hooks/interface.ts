// virtual-machine-interface (network, MAC, address pairs) and instance-ip (its address).

import { normaliseMac, parseIpv4 } from '../../util/ipv4.js';
import { BadRequest } from '../errors.js';
import type { StoredObject } from '../object.js';
import { claimAddress } from './addresses.js';
import { type HookContext, type TypeHooks, singleRef } from './context.js';

type Json = Record<string, unknown>;

/** TF's convention: 02 followed by the first five bytes of the uuid. */
export function macFromUuid(uuid: string): string {
  const hex = uuid.replace(/-/g, '').slice(0, 10);
  return ['02', ...hex.match(/../g)!].join(':');
}

function requireOneNetwork(obj: StoredObject): string {
  const refs = obj.refs['virtual_network_refs'] ?? [];
  const field = `${obj.type}.virtual_network_refs`;
  if (refs.length !== 1) throw new BadRequest(`${field}: exactly one virtual-network is required (got ${refs.length})`, field);
  return refs[0]!.uuid;
}

export const interfaceHooks: TypeHooks = {
  prepare(ctx, obj, old) {
    const network = requireOneNetwork(obj);
    if (old && singleRef(old, 'virtual_network_refs') !== network) {
      const held = ctx.view.referrers(obj.uuid).filter((r) => r.from.obj.type === 'instance-ip');
      if (held.length) {
        throw new BadRequest('virtual-machine-interface.virtual_network_refs: the network cannot change while instance-ips are attached', 'virtual-machine-interface.virtual_network_refs');
      }
    }
    const macField = 'virtual-machine-interface.virtual_machine_interface_mac_addresses.mac_address';
    const macs = ((obj.props['virtual_machine_interface_mac_addresses'] as Json | undefined)?.['mac_address'] ?? []) as string[];
    const normalised = macs.map((m, i) => {
      const mac = normaliseMac(m);
      if (!mac) throw new BadRequest(`${macField}[${i}]: '${m}' is not a unicast MAC address (xx:xx:xx:xx:xx:xx)`, `${macField}[${i}]`);
      return mac;
    });
    obj.props['virtual_machine_interface_mac_addresses'] = { mac_address: normalised.length ? normalised : [macFromUuid(obj.uuid)] };
    checkAddressPairs(obj);
  },
};

function checkAddressPairs(obj: StoredObject): void {
  const pairs = ((obj.props['virtual_machine_interface_allowed_address_pairs'] as Json | undefined)?.['allowed_address_pair'] ?? []) as Json[];
  pairs.forEach((p, i) => {
    const field = `virtual-machine-interface.virtual_machine_interface_allowed_address_pairs.allowed_address_pair[${i}]`;
    const ip = p['ip'] as Json;
    if (parseIpv4(ip['ip_prefix'] as string) === undefined) {
      throw new BadRequest(`${field}.ip.ip_prefix: '${String(ip['ip_prefix'])}' is not an IPv4 address`, `${field}.ip.ip_prefix`);
    }
    if (p['mac'] !== undefined) {
      const mac = normaliseMac(p['mac'] as string);
      if (!mac) throw new BadRequest(`${field}.mac: '${String(p['mac'])}' is not a unicast MAC address`, `${field}.mac`);
      p['mac'] = mac;
    }
  });
}

export const instanceIpHooks: TypeHooks = {
  prepare(ctx, obj, old) {
    adoptInterfaceNetwork(ctx, obj);
    const network = requireOneNetwork(obj);
    for (const [i, r] of (obj.refs['virtual_machine_interface_refs'] ?? []).entries()) {
      const vmi = ctx.m.lookup(r.uuid)!;
      if (singleRef(vmi, 'virtual_network_refs') !== network) {
        const field = `instance-ip.virtual_machine_interface_refs[${i}]`;
        throw new BadRequest(`${field}: interface ${r.uuid} is not in the instance-ip's network`, field);
      }
    }
    if (obj.props['instance_ip_family'] === 'v6') {
      throw new BadRequest('instance-ip.instance_ip_family: IPv6 addresses are not supported yet', 'instance-ip.instance_ip_family');
    }
    if (old) {
      keepImmutable(obj, old, 'instance_ip_address');
      if (singleRef(old, 'virtual_network_refs') !== network) {
        throw new BadRequest('instance-ip.virtual_network_refs: the network of an instance-ip cannot change', 'instance-ip.virtual_network_refs');
      }
      obj.props['subnet_uuid'] = old.props['subnet_uuid'];
      return;
    }
    const { address, subnetUuid } = claimAddress(ctx, ctx.m.lookup(network)!, obj.uuid, {
      address: obj.props['instance_ip_address'] as string | undefined,
      subnetUuid: obj.props['subnet_uuid'] as string | undefined,
      addressField: 'instance-ip.instance_ip_address',
      subnetField: 'instance-ip.subnet_uuid',
    });
    obj.props['instance_ip_address'] = address;
    obj.props['subnet_uuid'] = subnetUuid;
    obj.props['instance_ip_family'] = 'v4';
  },
  release(ctx, obj) {
    const network = singleRef(obj, 'virtual_network_refs');
    if (network) ctx.m.releaseIp(network, obj.props['instance_ip_address'] as string);
  },
};

/** TF accepts an instance-ip naming only its interface: the network is the interface's. */
function adoptInterfaceNetwork(ctx: HookContext, obj: StoredObject): void {
  if (obj.refs['virtual_network_refs']?.length) return;
  const vmi = singleRef(obj, 'virtual_machine_interface_refs');
  const network = vmi && singleRef(ctx.m.lookup(vmi)!, 'virtual_network_refs');
  if (network) obj.refs['virtual_network_refs'] = [{ uuid: network, attr: null }];
}

/** An address, once assigned, stays: changing it is refused, echoing it is fine. */
export function keepImmutable(obj: StoredObject, old: StoredObject, prop: string): void {
  const given = obj.props[prop];
  const field = `${obj.type}.${prop}`;
  if (given !== undefined && given !== old.props[prop]) throw new BadRequest(`${field}: cannot be changed (delete and re-create instead)`, field);
  obj.props[prop] = old.props[prop];
}
