// The kinds kept in the config API: their spec as read back from the API (comparable with
// desired.ts's), and the bodies apply sends.

import { formatRule } from '../cli/rule-syntax.js';
import { formatSgRule } from '../cli/sg-rule-syntax.js';
import type { TypeName } from '../model/types.js';
import type { ActualObject, DesiredObject, Kind } from './model.js';
import { ownerMark } from './ownership.js';

type Json = Record<string, unknown>;

export type ApiKind = Exclude<Kind, 'workload'>;

export const API_KINDS: Record<ApiKind, { type: TypeName; parentType: TypeName }> = {
  project: { type: 'project', parentType: 'domain' },
  'network-ipam': { type: 'network-ipam', parentType: 'project' },
  'network-policy': { type: 'network-policy', parentType: 'project' },
  'security-group': { type: 'security-group', parentType: 'project' },
  'virtual-network': { type: 'virtual-network', parentType: 'project' },
  'floating-ip-pool': { type: 'floating-ip-pool', parentType: 'virtual-network' },
  'floating-ip': { type: 'floating-ip', parentType: 'floating-ip-pool' },
};

/** A list field of an API object (absent: empty). */
export const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
/** A reference's target as `DOMAIN:PROJECT:NAME`. */
export const fqText = (ref: Json): string => (ref['to'] as string[]).join(':');
const rulesOf = (entries: unknown): Json[] => list((entries as Json | undefined)?.['policy_rule']);

function ipamSubnets(vn: Json): Json[] {
  return list(vn['network_ipam_refs']).flatMap((r) => list((r['attr'] as Json | null)?.['ipam_subnets']));
}

export function specOf(kind: ApiKind, raw: Json): Json {
  switch (kind) {
    case 'virtual-network': {
      const sequence = (r: Json) => ((r['attr'] as Json | null)?.['sequence'] as { major?: number; minor?: number } | undefined) ?? {};
      const policies = [...list(raw['network_policy_refs'])].sort((a, b) => (sequence(a).major ?? 0) - (sequence(b).major ?? 0) || (sequence(a).minor ?? 0) - (sequence(b).minor ?? 0));
      return {
        subnets: ipamSubnets(raw).map((s) => {
          const sn = s['subnet'] as Json;
          return { cidr: `${String(sn['ip_prefix'])}/${String(sn['ip_prefix_len'])}`, gateway: s['default_gateway'], dns: s['dns_server_address'] };
        }),
        vni: (raw['virtual_network_properties'] as Json | undefined)?.['vxlan_network_identifier'],
        router_external: raw['router_external'] ?? false,
        is_shared: raw['is_shared'] ?? false,
        snat: raw['cirrus_snat'] ?? false,
        policies: policies.map(fqText),
      };
    }
    case 'network-policy':
      return { rules: rulesOf(raw['network_policy_entries']).map(formatRule) };
    case 'security-group':
      return { rules: rulesOf(raw['security_group_entries']).map(formatSgRule) };
    case 'floating-ip':
      return { address: raw['floating_ip_address'], ports: list(raw['virtual_machine_interface_refs']).map(fqText).sort() };
    default:
      return {};
  }
}

export function createBody(d: DesiredObject, topology: string): Json {
  return { fq_name: d.fq, parent_type: API_KINDS[d.kind as ApiKind].parentType, annotations: { key_value_pair: [ownerMark(topology)] }, ...d.body };
}

/**
 * The PUT body: the managed properties. A network keeps what the server filled in its
 * subnets (their uuids, which pools refer to; gateways the file leaves to the server)
 * and in its properties.
 */
export function updateBody(d: DesiredObject, a: ActualObject): Json {
  if (d.kind === 'floating-ip') {
    const { floating_ip_address: _fixed, ...rest } = d.body;
    return rest;
  }
  if (d.kind !== 'virtual-network') return d.body;
  const body: Json = { ...d.body };
  const present = ipamSubnets(a.raw);
  const prefix = (s: Json) => JSON.stringify([(s['subnet'] as Json)['ip_prefix'], (s['subnet'] as Json)['ip_prefix_len']]);
  body['network_ipam_refs'] = list(d.body['network_ipam_refs']).map((ref) => ({
    to: (list(a.raw['network_ipam_refs'])[0]?.['to'] as string[] | undefined) ?? ref['to'],
    attr: {
      ipam_subnets: list((ref['attr'] as Json)['ipam_subnets']).map((want) => ({ ...present.find((s) => prefix(s) === prefix(want)), ...want })),
    },
  }));
  if (d.body['virtual_network_properties']) {
    body['virtual_network_properties'] = { ...(a.raw['virtual_network_properties'] as Json | undefined), ...(d.body['virtual_network_properties'] as Json) };
  }
  return body;
}
