// Type-specific logic by type.

import { isIpv4 } from '../../util/ipv4.js';
import type { TypeName } from '../../model/types.js';
import { BadRequest } from '../errors.js';
import type { TypeHooks } from './context.js';
import { floatingIpHooks, floatingIpPoolHooks } from './floating.js';
import { instanceIpHooks, interfaceHooks } from './interface.js';
import { networkHooks } from './network.js';
import { networkPolicyHooks, securityGroupHooks } from './policy.js';
import { projectHooks } from './project.js';

const virtualRouterHooks: TypeHooks = {
  prepare(_ctx, obj) {
    const ip = obj.props['virtual_router_ip_address'];
    const field = 'virtual-router.virtual_router_ip_address';
    if (ip !== undefined && !isIpv4(ip as string)) throw new BadRequest(`${field}: '${String(ip)}' is not an IPv4 address`, field);
  },
};

const routeTargetHooks: TypeHooks = {
  prepare(_ctx, obj) {
    const name = obj.fq_name[0]!;
    if (!/^target:[^:]+:\d+$/.test(name)) throw new BadRequest(`route-target.fq_name: '${name}' is not target:ASN:N or target:IP:N`, 'route-target.fq_name');
  },
};

export const HOOKS: Partial<Record<TypeName, TypeHooks>> = {
  project: projectHooks,
  'virtual-network': networkHooks,
  'virtual-machine-interface': interfaceHooks,
  'instance-ip': instanceIpHooks,
  'network-policy': networkPolicyHooks,
  'security-group': securityGroupHooks,
  'floating-ip-pool': floatingIpPoolHooks,
  'floating-ip': floatingIpHooks,
  'virtual-router': virtualRouterHooks,
  'route-target': routeTargetHooks,
};
