// Request bodies shaped like TF's clients send them.

export const ADMIN = ['default-domain', 'admin'];

export function networkBody(name: string, ...cidrs: string[]) {
  return {
    'virtual-network': {
      fq_name: [...ADMIN, name],
      parent_type: 'project',
      network_ipam_refs: [
        {
          to: [...ADMIN, 'default-network-ipam'],
          attr: {
            ipam_subnets: cidrs.map((c) => {
              const [ip, len] = c.split('/');
              return { subnet: { ip_prefix: ip, ip_prefix_len: Number(len) }, addr_from_start: true };
            }),
          },
        },
      ],
    },
  };
}

export function interfaceBody(name: string, network: string, extra: Record<string, unknown> = {}) {
  return { 'virtual-machine-interface': { fq_name: [...ADMIN, name], parent_type: 'project', virtual_network_refs: [{ uuid: network }], ...extra } };
}

export function instanceIpBody(network: string, vmi?: string, extra: Record<string, unknown> = {}) {
  return {
    'instance-ip': {
      virtual_network_refs: [{ uuid: network }],
      ...(vmi ? { virtual_machine_interface_refs: [{ uuid: vmi }] } : {}),
      ...extra,
    },
  };
}
