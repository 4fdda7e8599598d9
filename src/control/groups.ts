// Security groups as the control node keeps them: each group compiled (sg.ts), and the
// indexes that say which groups a change touches: a group's members (their addresses stand
// for the group in other groups' rules) and which groups name a group in their rules.

import type { ConfigView } from '../config/view.js';
import { singleRef } from '../config/hooks/context.js';
import type { SgEntry } from './protocol.js';
import { primaryIp } from './interfaces.js';
import { compileGroup, groupsOf, remoteGroups } from './sg.js';

interface Member {
  groups: string[];
  address?: string;
  iip?: string;
}

export interface GroupRec {
  value: SgEntry;
  json: string;
}

export class GroupIndex {
  private readonly entries = new Map<string, GroupRec>();
  private readonly vmis = new Map<string, Member>();
  private readonly iipOwner = new Map<string, string>();
  private readonly members = new Map<string, Set<string>>();
  /** group → groups whose rules name it; group → the groups it names. */
  private readonly users = new Map<string, Set<string>>();
  private readonly names = new Map<string, string[]>();

  constructor(private readonly view: ConfigView) {
    for (const c of view.ofType('virtual-machine-interface')) this.refreshMember(c.obj.uuid);
    for (const c of view.ofType('security-group')) this.compile(c.obj.uuid);
  }

  entry(group: string): GroupRec | undefined {
    return this.entries.get(group);
  }

  /** After the view changed these objects: recompiles the groups they touch; returns those whose entry changed. */
  update(changed: Iterable<string>): Set<string> {
    const dirty = new Set<string>();
    const vmis = new Set<string>();
    for (const uuid of changed) {
      const obj = this.view.get(uuid)?.obj;
      if (obj?.type === 'security-group' || this.entries.has(uuid)) dirty.add(uuid);
      if (obj?.type === 'virtual-machine-interface' || this.vmis.has(uuid)) vmis.add(uuid);
      if (obj?.type === 'instance-ip') {
        const vmi = singleRef(obj, 'virtual_machine_interface_refs');
        if (vmi) vmis.add(vmi);
      }
      const owner = this.iipOwner.get(uuid);
      if (owner) vmis.add(owner);
    }
    for (const vmi of vmis) for (const g of this.refreshMember(vmi)) for (const user of this.users.get(g) ?? []) dirty.add(user);
    const out = new Set<string>();
    for (const g of dirty) {
      const before = this.entries.get(g)?.json;
      this.compile(g);
      if (this.entries.get(g)?.json !== before) out.add(g);
    }
    return out;
  }

  /** Re-reads an interface's groups and address; returns the groups whose members changed. */
  private refreshMember(vmi: string): string[] {
    const old = this.vmis.get(vmi);
    const obj = this.view.get(vmi)?.obj;
    const iip = obj ? primaryIp(this.view, obj) : undefined;
    const fresh: Member | undefined = obj
      ? { groups: groupsOf(obj), ...(iip ? { iip: iip.uuid, address: iip.props['instance_ip_address'] as string } : {}) }
      : undefined;
    if (old?.iip) this.iipOwner.delete(old.iip);
    for (const g of old?.groups ?? []) this.members.get(g)?.delete(vmi);
    if (fresh) {
      this.vmis.set(vmi, fresh);
      if (fresh.iip) this.iipOwner.set(fresh.iip, vmi);
      for (const g of fresh.groups) {
        let m = this.members.get(g);
        if (!m) this.members.set(g, (m = new Set()));
        m.add(vmi);
      }
    } else this.vmis.delete(vmi);
    if (old?.address === fresh?.address && JSON.stringify(old?.groups) === JSON.stringify(fresh?.groups)) return [];
    return [...new Set([...(old?.groups ?? []), ...(fresh?.groups ?? [])])];
  }

  private compile(group: string): void {
    for (const named of this.names.get(group) ?? []) this.users.get(named)?.delete(group);
    const sg = this.view.get(group)?.obj;
    if (!sg || sg.type !== 'security-group') {
      this.entries.delete(group);
      this.names.delete(group);
      return;
    }
    const named = remoteGroups(this.view, sg);
    this.names.set(group, named);
    for (const g of named) {
      let u = this.users.get(g);
      if (!u) this.users.set(g, (u = new Set()));
      u.add(group);
    }
    const value = compileGroup(this.view, sg, (g) => [...(this.members.get(g) ?? [])].map((v) => this.vmis.get(v)?.address).filter((a): a is string => !!a));
    this.entries.set(group, { value, json: JSON.stringify(value) });
  }
}
