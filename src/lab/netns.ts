// Namespaces and the underlay: a bridge in the fabric namespace with one veth per host,
// the host end (eth0) addressed in the underlay range. Every command runs with `ip -n`
// inside a lab namespace: nothing is added to the root namespace.

import fs from 'node:fs';
import { run } from '../agent/dataplane/kernel.js';
import { CliError } from '../cli/client.js';
import { FABRIC_BRIDGE, HOST_UPLINK } from './layout.js';
import type { HostRecord } from './state.js';

/** What the underlay needs of a host or control node. */
type UnderlayMember = Pick<HostRecord, 'name' | 'netns' | 'underlayIp' | 'prefixLen'>;

const NETNS_DIR = '/run/netns';

export function listNetns(): string[] {
  try {
    return fs.readdirSync(NETNS_DIR).sort();
  } catch {
    return [];
  }
}

export const netnsExists = (name: string): boolean => fs.existsSync(`${NETNS_DIR}/${name}`);

/** Whether process `pid` lives in the namespace now named `name`. */
export function inNetns(pid: number, name: string): boolean {
  try {
    return fs.statSync(`/proc/${pid}/ns/net`).ino === fs.statSync(`${NETNS_DIR}/${name}`).ino;
  } catch {
    return false;
  }
}

/** `ip ARGS`, failing with the command and ip's message. */
export async function ip(args: string[]): Promise<string> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new CliError(`ip ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** Creates the namespace if it is missing; returns whether it did. Loopback is up either way. */
export async function ensureNetns(name: string): Promise<boolean> {
  const created = !netnsExists(name);
  if (created) await ip(['netns', 'add', name]);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  return created;
}

export async function deleteNetns(name: string): Promise<void> {
  if (netnsExists(name)) await ip(['netns', 'del', name]);
}

/** PIDs of processes in a namespace (`ip netns pids`). */
export async function netnsPids(name: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', name]);
  return r.code === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number) : [];
}

interface IpLink {
  ifname: string;
  master?: string;
  operstate?: string;
}

async function links(netns: string): Promise<Map<string, IpLink>> {
  const list = JSON.parse((await ip(['-n', netns, '-j', 'link', 'show'])) || '[]') as IpLink[];
  return new Map(list.map((l) => [l.ifname, l]));
}

/** The fabric bridge and each host's uplink to it, made where missing. */
export async function ensureUnderlay(fabric: string, hosts: UnderlayMember[]): Promise<void> {
  await ensureNetns(fabric);
  const fab = await links(fabric);
  if (!fab.has(FABRIC_BRIDGE)) await ip(['-n', fabric, 'link', 'add', FABRIC_BRIDGE, 'type', 'bridge']);
  await ip(['-n', fabric, 'link', 'set', FABRIC_BRIDGE, 'up']);
  for (const h of hosts) {
    await ensureNetns(h.netns);
    const uplink = (await links(h.netns)).has(HOST_UPLINK);
    if (!fab.has(h.name) || !uplink) {
      // One end alone is what is left of a namespace deleted by hand: make the pair anew.
      if (uplink) await ip(['-n', h.netns, 'link', 'del', HOST_UPLINK]);
      if (fab.has(h.name)) await ip(['-n', fabric, 'link', 'del', h.name]);
      await ip(['-n', fabric, 'link', 'add', h.name, 'type', 'veth', 'peer', 'name', HOST_UPLINK, 'netns', h.netns]);
    }
    await ip(['-n', fabric, 'link', 'set', h.name, 'master', FABRIC_BRIDGE, 'up']);
    await ip(['-n', h.netns, 'addr', 'replace', `${h.underlayIp}/${h.prefixLen}`, 'dev', HOST_UPLINK]);
    await ip(['-n', h.netns, 'link', 'set', HOST_UPLINK, 'up']);
  }
}
