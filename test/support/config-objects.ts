// Configuration objects for unit tests of the pure computations: a ConfigView loaded with
// them (objects and their names, in creation order), and policy rule addresses.

import { Keys, type StoredObject } from '../../src/config/object.js';
import { ConfigView } from '../../src/config/view.js';

export function viewOf(objs: StoredObject[]): ConfigView {
  const v = new ConfigView();
  const kvs = objs.flatMap((o, i) => [
    { key: Keys.object(o.type, o.uuid), value: JSON.stringify(o), createRev: 2 * i + 1, modRev: 2 * i + 1 },
    { key: Keys.name(o.type, o.fq_name), value: o.uuid, createRev: 2 * i + 2, modRev: 2 * i + 2 },
  ]);
  v.load(kvs, kvs.length);
  return v;
}

/** Writes and deletes objects in `view` as the store's change feed would (one revision). */
export function changeView(view: ConfigView, put: StoredObject[], del: StoredObject[] = []): void {
  const rev = view.rev + 1;
  view.apply([
    ...put.flatMap((o) => [
      { rev, key: Keys.object(o.type, o.uuid), value: JSON.stringify(o) },
      { rev, key: Keys.name(o.type, o.fq_name), value: o.uuid },
    ]),
    ...del.flatMap((o) => [
      { rev, key: Keys.object(o.type, o.uuid) },
      { rev, key: Keys.name(o.type, o.fq_name) },
    ]),
  ]);
}

/** A rule address: 'any', 'local', a network's fq-name string, or a CIDR. */
export function ruleAddress(a: string): Record<string, unknown> {
  if (!a.includes('/')) return { virtual_network: a };
  const [prefix, len] = a.split('/');
  return { subnet: { ip_prefix: prefix, ip_prefix_len: Number(len) } };
}

/** A network policy in a project 'd:p', its rules as TF stores them. */
export function policyObject(uuid: string, rules: { src: string; dst: string; action?: 'pass' | 'deny'; direction?: '>' | '<>' }[]): StoredObject {
  return {
    type: 'network-policy',
    uuid,
    fq_name: ['d', 'p', uuid],
    parent_type: 'project',
    parent_uuid: 'proj',
    props: {
      network_policy_entries: {
        policy_rule: rules.map((r) => ({ direction: r.direction ?? '>', protocol: 'any', src_addresses: [ruleAddress(r.src)], dst_addresses: [ruleAddress(r.dst)], action_list: { simple_action: r.action ?? 'pass' } })),
      },
    },
    refs: {},
  };
}
