// project: every project gets a `default` security group (as TF): members reach each
// other, egress is open. It is deleted with the project.

import type { StoredObject } from '../object.js';
import type { TypeHooks } from './context.js';

export const DEFAULT_SECURITY_GROUP = 'default';

function defaultRules(project: StoredObject): unknown[] {
  const self = [...project.fq_name, DEFAULT_SECURITY_GROUP].join(':');
  const anyPort = (): unknown[] => [{ start_port: -1, end_port: -1 }];
  return [
    {
      direction: '>',
      protocol: 'any',
      ethertype: 'IPv4',
      src_addresses: [{ security_group: self }],
      dst_addresses: [{ security_group: 'local' }],
      src_ports: anyPort(),
      dst_ports: anyPort(),
    },
    {
      direction: '>',
      protocol: 'any',
      ethertype: 'IPv4',
      src_addresses: [{ security_group: 'local' }],
      dst_addresses: [{ subnet: { ip_prefix: '0.0.0.0', ip_prefix_len: 0 } }],
      src_ports: anyPort(),
      dst_ports: anyPort(),
    },
  ];
}

export const projectHooks: TypeHooks = {
  afterCreate(ctx, obj) {
    ctx.createInside('security-group', {
      fq_name: [...obj.fq_name, DEFAULT_SECURITY_GROUP],
      parent_type: 'project',
      security_group_entries: { policy_rule: defaultRules(obj) },
    });
  },
  ownedChildren(ctx, obj) {
    return ctx.view.childrenOf(obj.uuid).filter((c) => c.obj.type === 'security-group' && c.obj.fq_name.at(-1) === DEFAULT_SECURITY_GROUP);
  },
};
