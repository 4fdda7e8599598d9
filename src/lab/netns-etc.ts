// A workload namespace's own /etc: `ip netns exec NS` bind-mounts the files of
// /etc/netns/NS/ over /etc, so whatever runs in the workload (a DHCP client writing
// resolv.conf, a resolver reading it) uses the workload's copy, never the host's.

import fs from 'node:fs';
import path from 'node:path';

const NETNS_ETC = '/etc/netns';

export const netnsEtc = (ns: string): string => path.join(NETNS_ETC, ns);

/** The workload's resolv.conf: the network's DNS address (a DHCP client rewrites it). */
export function writeResolvConf(ns: string, nameserver: string | undefined): void {
  fs.mkdirSync(netnsEtc(ns), { recursive: true });
  fs.writeFileSync(path.join(netnsEtc(ns), 'resolv.conf'), nameserver ? `nameserver ${nameserver}\n` : '');
}

export function removeNetnsEtc(ns: string): void {
  fs.rmSync(netnsEtc(ns), { recursive: true, force: true });
}
