// Data paths built by hand with `ip` and `bridge`, no Cirrus: what the benchmarks compare
// Cirrus with (see /work/shared/baselines/*.sh for the shell versions these come from).
// Every namespace is named `${prefix}NAME` and made here; links are created inside the
// namespaces directly, so nothing ever appears in the root namespace.
//
// - veth:   two namespaces joined by one veth pair (the physical limit of this machine).
// - vxlan:  two host namespaces on an underlay, a `vxlan external` device each (the
//           variant of feas_i.sh, the way Cirrus's `cvx` works), `encap ip id 100` routes in
//           a per-network table, a `tun_id 100` rule on receive, permanent neighbours,
//           workload MTU 1450 (routed, L3).
// - flannel: an L2 path as flannel's vxlan backend builds it (topo_e.sh): in each host a
//           bridge with the workload's veth and a VXLAN device with static fdb entries.
//
// The underlay is a bridge in a third namespace, as the lab's fabric is (`fabric: true`),
// or one veth between the two hosts.

import { run } from '../../src/agent/dataplane/kernel.js';
import { must } from './exec.js';

/** A measured path: run the client in `client`, the servers in `server`, reach them at `serverIp`. */
export interface DataPath {
  client: string;
  server: string;
  serverIp: string;
}

export const ipn = (ns: string, ...a: string[]): Promise<string> => must('ip', ['-n', ns, ...a]);
const sysctl = (ns: string, kv: string) => must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', kv]);

export async function addNetns(...names: string[]): Promise<void> {
  for (const ns of names) {
    await must('ip', ['netns', 'add', ns]);
    await ipn(ns, 'link', 'set', 'lo', 'up');
  }
}

/** Deletes every namespace whose name starts with one of `prefixes` (their links go with them). */
export async function deleteNetnsWithPrefix(...prefixes: string[]): Promise<string[]> {
  const names = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n && prefixes.some((p) => n.startsWith(p)));
  for (const n of names) await run('ip', ['netns', 'del', n]);
  return names;
}

/** A workload namespace's `eth0`, its peer `peerName` in `host` (both up). */
async function workloadVeth(w: string, host: string, peerName: string, opts: { mac?: string; mtu?: number } = {}): Promise<void> {
  await ipn(w, 'link', 'add', 'eth0', ...(opts.mac ? ['address', opts.mac] : []), ...(opts.mtu ? ['mtu', String(opts.mtu)] : []), 'type', 'veth', 'peer', 'name', peerName, 'netns', host);
  await ipn(w, 'link', 'set', 'eth0', 'up');
  await ipn(host, 'link', 'set', peerName, 'up');
}

/** Two host namespaces whose `ul0`s are on one underlay (a fabric bridge or one veth), addressed `addrs`/24. */
export async function underlay(prefix: string, hosts: [string, string], addrs: [string, string], fabric: boolean): Promise<void> {
  if (fabric) {
    const fab = `${prefix}fab`;
    await addNetns(fab);
    await ipn(fab, 'link', 'add', 'br0', 'type', 'bridge');
    await ipn(fab, 'link', 'set', 'br0', 'up');
    for (const [i, h] of hosts.entries()) {
      await ipn(fab, 'link', 'add', `h${i + 1}`, 'master', 'br0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', h);
      await ipn(fab, 'link', 'set', `h${i + 1}`, 'up');
    }
  } else {
    await ipn(hosts[0], 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', hosts[1]);
  }
  for (const [i, h] of hosts.entries()) {
    await ipn(h, 'addr', 'add', `${addrs[i]}/24`, 'dev', 'ul0');
    await ipn(h, 'link', 'set', 'ul0', 'up');
  }
}

/** veth: `${prefix}a` 10.200.0.1/24 — `${prefix}b` 10.200.0.2/24. */
export async function buildVeth(prefix: string): Promise<DataPath> {
  const a = `${prefix}a`;
  const b = `${prefix}b`;
  await addNetns(a, b);
  await ipn(a, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b);
  for (const [ns, ip] of [[a, '10.200.0.1'], [b, '10.200.0.2']] as const) {
    await ipn(ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
    await ipn(ns, 'link', 'set', 'eth0', 'up');
  }
  return { client: a, server: b, serverIp: '10.200.0.2' };
}

/** Routed L3 VXLAN through one `vxlan external` device per host (Cirrus's shape, by hand). */
export async function buildKernelVxlan(prefix: string, fabric: boolean): Promise<DataPath> {
  const ns = { ha: `${prefix}ha`, hb: `${prefix}hb`, wa: `${prefix}wa`, wb: `${prefix}wb` };
  await addNetns(...Object.values(ns));
  await underlay(prefix, [ns.ha, ns.hb], ['10.250.0.1', '10.250.0.2'], fabric);
  const sides = [
    { h: ns.ha, w: ns.wa, ul: '10.250.0.1', wip: '10.202.0.2', vxMac: '02:bb:00:00:00:01', wMac: '02:bb:00:00:01:01' },
    { h: ns.hb, w: ns.wb, ul: '10.250.0.2', wip: '10.202.0.3', vxMac: '02:bb:00:00:00:02', wMac: '02:bb:00:00:01:02' },
  ];
  for (const s of sides) {
    await sysctl(s.h, 'net.ipv4.ip_forward=1');
    await ipn(s.h, 'link', 'add', 'vx', 'address', s.vxMac, 'mtu', '1450', 'type', 'vxlan', 'external', 'dstport', '4789', 'nolearning');
    await ipn(s.h, 'link', 'set', 'vx', 'up');
    await workloadVeth(s.w, s.h, 'wl', { mac: s.wMac, mtu: 1450 });
    await ipn(s.w, 'addr', 'add', `${s.wip}/32`, 'dev', 'eth0');
    await ipn(s.w, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
    await ipn(s.w, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
    await ipn(s.h, 'addr', 'add', '169.254.1.1/32', 'dev', 'lo');
    await ipn(s.h, 'route', 'add', `${s.wip}/32`, 'dev', 'wl', 'table', '100');
    await ipn(s.h, 'neigh', 'add', s.wip, 'lladdr', s.wMac, 'dev', 'wl', 'nud', 'permanent');
    await ipn(s.h, 'rule', 'add', 'tun_id', '100', 'lookup', '100', 'pref', '100');
    await ipn(s.h, 'rule', 'add', 'iif', 'wl', 'lookup', '100', 'pref', '101');
  }
  for (const [a, b] of [[sides[0]!, sides[1]!], [sides[1]!, sides[0]!]] as const) {
    await ipn(a.h, 'route', 'add', `${b.wip}/32`, 'encap', 'ip', 'id', '100', 'dst', b.ul, 'dev', 'vx', 'table', '100');
    await ipn(a.h, 'neigh', 'add', b.wip, 'lladdr', b.vxMac, 'dev', 'vx', 'nud', 'permanent');
  }
  return { client: ns.wa, server: ns.wb, serverIp: sides[1]!.wip };
}

/** L2 VXLAN through a Linux bridge in each host, flannel-style: static fdb, head-end replication for ARP. */
export async function buildFlannel(prefix: string, fabric: boolean): Promise<DataPath> {
  const ns = { ha: `${prefix}ha`, hb: `${prefix}hb`, wa: `${prefix}wa`, wb: `${prefix}wb` };
  await addNetns(...Object.values(ns));
  await underlay(prefix, [ns.ha, ns.hb], ['10.250.1.1', '10.250.1.2'], fabric);
  const sides = [
    { h: ns.ha, w: ns.wa, ul: '10.250.1.1', wip: '10.203.0.2', wMac: '02:bc:00:00:01:01' },
    { h: ns.hb, w: ns.wb, ul: '10.250.1.2', wip: '10.203.0.3', wMac: '02:bc:00:00:01:02' },
  ];
  for (const s of sides) {
    await workloadVeth(s.w, s.h, 'wl', { mac: s.wMac, mtu: 1450 });
    await ipn(s.w, 'addr', 'add', `${s.wip}/24`, 'dev', 'eth0');
    await ipn(s.h, 'link', 'add', 'br100', 'type', 'bridge');
    await ipn(s.h, 'link', 'add', 'vx100', 'type', 'vxlan', 'id', '100', 'local', s.ul, 'dstport', '4789', 'nolearning', 'dev', 'ul0');
    await ipn(s.h, 'link', 'set', 'vx100', 'master', 'br100');
    await ipn(s.h, 'link', 'set', 'wl', 'master', 'br100');
    await must('bridge', ['-n', s.h, 'link', 'set', 'dev', 'vx100', 'learning', 'off']);
    await ipn(s.h, 'link', 'set', 'vx100', 'up');
    await ipn(s.h, 'link', 'set', 'br100', 'up');
  }
  for (const [a, b] of [[sides[0]!, sides[1]!], [sides[1]!, sides[0]!]] as const) {
    await must('bridge', ['-n', a.h, 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx100', 'dst', b.ul, 'self', 'permanent']);
    await must('bridge', ['-n', a.h, 'fdb', 'add', b.wMac, 'dev', 'vx100', 'dst', b.ul, 'self', 'permanent']);
    await must('bridge', ['-n', a.h, 'fdb', 'add', b.wMac, 'dev', 'vx100', 'master', 'static']);
  }
  return { client: ns.wa, server: ns.wb, serverIp: sides[1]!.wip };
}
