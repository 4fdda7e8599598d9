// What the control node reads of an interface: where it lives and its plumbed address.

import type { StoredObject } from '../config/object.js';
import type { ConfigView } from '../config/view.js';

/** An interface's first address (by creation): the one it is plumbed with. */
export function primaryIp(view: ConfigView, vmi: StoredObject): StoredObject | undefined {
  let best: { obj: StoredObject; createRev: number } | undefined;
  for (const { from } of view.referrers(vmi.uuid)) {
    if (from.obj.type !== 'instance-ip' || typeof from.obj.props['instance_ip_address'] !== 'string') continue;
    if (!best || from.createRev < best.createRev) best = { obj: from.obj, createRev: from.createRev };
  }
  return best?.obj;
}

export function bindingHost(vmi: StoredObject): string | undefined {
  const pairs = (vmi.props['virtual_machine_interface_bindings'] as { key_value_pair?: { key: string; value?: string }[] } | undefined)?.key_value_pair ?? [];
  return pairs.find((p) => p.key === 'host_id')?.value || undefined;
}
