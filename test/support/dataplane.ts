// The kernel as the data plane's reader would return it after applying everything desired:
// what the unit tests of plan() compare against (a converged host needs no change).

import type { HostState } from '../../src/agent/host-state.js';
import { type KernelState, desiredState } from '../../src/agent/dataplane/model.js';
import type { NftTable } from '../../src/agent/dataplane/nft.js';

/** The nft tables as desired, as the kernel reader would return them (chains by name). */
export function readBack(t: NftTable): NftTable {
  return { maps: new Map([...t.maps].map(([k, m]) => [k, new Map(m)])), chains: new Map([...t.chains.keys()].map((c) => [c, []])) };
}

/** The kernel exactly as desired (what a converged host looks like). */
export function converged(h: HostState): KernelState {
  const { kernel: d, nft } = desiredState(h);
  return { links: new Map(d.links), routes: new Map(d.routes), nexthops: new Map(d.nexthops), rules: new Map(d.rules), neighs: new Map(d.neighs), addresses: new Set(d.addresses), nft: { ip: readBack(nft.ip), arp: readBack(nft.arp) } };
}
