// The demo topology of the first run (the seeds' scenario, as far as the data plane goes
// today): networks red and green, the seed's `service-1` on h1 and a client on h2 in red, one
// workload in green. Idempotent: what exists is kept.

import type { CliContext } from '../cli/context.js';
import { projectFqName } from '../cli/names.js';
import type { Say } from './up.js';
import { type LabState, readWorkload } from './state.js';
import { addWorkload, labContext } from './workloads.js';

export const DEMO_NETWORKS = [
  { name: 'red', cidr: '192.168.10.0/24' },
  { name: 'green', cidr: '192.168.20.0/24' },
];

export const DEMO_WORKLOADS = [
  { name: 'service-1', host: 'h1', network: 'red', ip: '192.168.10.10' },
  { name: 'client-1', host: 'h2', network: 'red', ip: '192.168.10.11' },
  { name: 'green-1', host: 'h2', network: 'green', ip: '192.168.20.10' },
];

export async function buildDemo(ctx: CliContext, state: LabState, say: Say): Promise<void> {
  const lab = labContext(ctx, state);
  const project = projectFqName(lab.project);
  for (const n of DEMO_NETWORKS) {
    if (await lab.api.uuidOf('virtual-network', [...project, n.name])) continue;
    const [ip, len] = n.cidr.split('/');
    await lab.api.create('virtual-network', {
      fq_name: [...project, n.name],
      parent_type: 'project',
      network_ipam_refs: [{ to: [...project, 'default-network-ipam'], attr: { ipam_subnets: [{ subnet: { ip_prefix: ip, ip_prefix_len: Number(len) }, addr_from_start: true }] } }],
    });
    say(`  network ${n.name} ${n.cidr}`);
  }
  for (const w of DEMO_WORKLOADS) {
    if (readWorkload(state.name, w.name)) continue;
    const rec = await addWorkload(ctx, state.name, w);
    say(`  workload ${rec.name} on ${rec.host}: ${rec.address} in ${rec.network}`);
  }
}
