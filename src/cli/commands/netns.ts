// cirrus netns attach|detach: put a network namespace into a virtual network in one
// command (the seed's flow): API objects, host binding, and the local agent's plumbing.

import fs from 'node:fs';
import type { Command } from 'commander';
import { run } from '../../agent/dataplane/kernel.js';
import { isValidIfName, isValidNetns } from '../../agent/dataplane/names.js';
import { ApiClient, CliError } from '../client.js';
import { type CliContext, contextOf } from '../context.js';
import { ownedFqName, resolve } from '../names.js';
import { emit } from '../output.js';

type Json = Record<string, unknown>;

/** Marks a VM whose namespace `netns attach` created, so that detach removes it. */
const CREATED_NETNS = 'cirrus.netns-created';

export function agentClient(override?: string): ApiClient {
  return new ApiClient(override ?? process.env['CIRRUS_AGENT'] ?? 'http://127.0.0.1:9091', 'the Cirrus agent', "is 'cirrus agent' running on this host? (set CIRRUS_AGENT or --agent)");
}

export interface AttachRequest {
  netns: string;
  network: string;
  ip?: string;
  mac?: string;
  ifname: string;
  dhcp?: boolean;
  /** Set on the virtual-machine and the port it creates. */
  annotations?: { key: string; value: string }[];
}

/** The attach flow, shared by `netns attach` and `lab workload add`. */
export async function attach(ctx: CliContext, agent: ApiClient, req: AttachRequest): Promise<Json> {
  if (!isValidNetns(req.netns) || req.netns.startsWith('/')) throw new CliError(`'${req.netns}' is not a namespace name (letters, digits, _ . -)`);
  if (!isValidIfName(req.ifname)) throw new CliError(`--ifname: '${req.ifname}' is not a valid interface name`);
  const { host } = await agent.get<{ host: string }>('/ports');
  const api = ctx.api;
  const vn = await resolve(api, 'virtual-network', req.network, ctx.project);
  const made: { type: string; uuid: string }[] = [];
  let createdNs = false;
  try {
    if (!fs.existsSync(`/run/netns/${req.netns}`)) {
      const r = await run('ip', ['netns', 'add', req.netns]);
      if (r.code !== 0) throw new CliError(`cannot create namespace ${req.netns}: ${r.stderr.trim()}`);
      createdNs = true;
    }
    let vmUuid = await api.uuidOf('virtual-machine', [req.netns]);
    if (!vmUuid) {
      const marks = [...(createdNs ? [{ key: CREATED_NETNS, value: 'true' }] : []), ...(req.annotations ?? [])];
      const annotations = marks.length ? { annotations: { key_value_pair: marks } } : {};
      vmUuid = (await api.create('virtual-machine', { fq_name: [req.netns], ...annotations }))['uuid'] as string;
      made.push({ type: 'virtual-machine', uuid: vmUuid });
    }
    const vmi: Json = {
      fq_name: ownedFqName(`${req.netns}-${req.ifname}`, ctx.project),
      parent_type: 'project',
      virtual_network_refs: [{ uuid: vn.uuid }],
      virtual_machine_refs: [{ uuid: vmUuid }],
      virtual_machine_interface_bindings: { key_value_pair: [{ key: 'host_id', value: host }] },
      ...(req.mac ? { virtual_machine_interface_mac_addresses: { mac_address: [req.mac] } } : {}),
      ...(req.annotations?.length ? { annotations: { key_value_pair: req.annotations } } : {}),
    };
    const vmiUuid = (await api.create('virtual-machine-interface', vmi))['uuid'] as string;
    made.push({ type: 'virtual-machine-interface', uuid: vmiUuid });
    const iip = (await api.create('instance-ip', {
      fq_name: [vmiUuid],
      virtual_network_refs: [{ uuid: vn.uuid }],
      virtual_machine_interface_refs: [{ uuid: vmiUuid }],
      ...(req.ip ? { instance_ip_address: req.ip } : {}),
    }))['uuid'] as string;
    made.push({ type: 'instance-ip', uuid: iip });
    return await agent.post<Json>('/ports', { vmi_uuid: vmiUuid, netns: req.netns, ifname: req.ifname, ...(req.dhcp ? { dhcp: true } : {}) });
  } catch (e) {
    for (const m of made.reverse()) await api.delete(m.type, m.uuid).catch(() => undefined);
    if (createdNs) await run('ip', ['netns', 'del', req.netns]);
    throw e;
  }
}

/** Undoes `attach` for every interface of the namespace's VM. */
export async function detach(ctx: CliContext, agent: ApiClient, netns: string): Promise<string[]> {
  const api = ctx.api;
  const vmUuid = await api.uuidOf('virtual-machine', [netns]);
  if (!vmUuid) throw new CliError(`namespace ${netns} is not attached (no virtual-machine ${netns})`);
  const vm = await api.read('virtual-machine', vmUuid);
  const vmis = ((vm['virtual_machine_interface_back_refs'] ?? []) as Json[]).map((r) => r['uuid'] as string);
  for (const vmi of vmis) {
    await agent.request('DELETE', `/ports/${vmi}`).catch((e: Error) => {
      if (!/HTTP 404/.test(e.message)) throw e;
    });
    const ips = await api.listDetail('instance-ip', `back_ref_id=${vmi}`);
    for (const ip of ips) await api.delete('instance-ip', ip['uuid'] as string);
    await api.delete('virtual-machine-interface', vmi);
  }
  await api.delete('virtual-machine', vmUuid);
  const created = ((vm['annotations'] as Json | undefined)?.['key_value_pair'] as Json[] | undefined)?.some((kv) => kv['key'] === CREATED_NETNS);
  if (created && fs.existsSync(`/run/netns/${netns}`)) {
    const r = await run('ip', ['netns', 'del', netns]);
    if (r.code !== 0) throw new CliError(`cannot delete namespace ${netns}: ${r.stderr.trim()}`);
  }
  return vmis;
}

export function netnsCommands(program: Command): void {
  const netns = program.command('netns').description('attach network namespaces to virtual networks (through the local agent)');
  netns
    .command('attach <netns>')
    .description('put namespace NETNS into a network (created when missing); prints its address')
    .requiredOption('--network <network>', 'the network (NAME, DOMAIN:PROJECT:NAME or uuid)')
    .option('--ip <address>', 'a fixed address instead of an allocated one')
    .option('--mac <mac>', 'a fixed MAC')
    .option('--ifname <name>', 'interface name inside the namespace', 'eth0')
    .option('--dhcp', "configure only the link: the workload's DHCP client gets the address")
    .option('--agent <url>', 'the local agent: http://HOST:PORT or unix:/PATH (default $CIRRUS_AGENT or http://127.0.0.1:9091)')
    .action(async (ns: string, opts: { network: string; ip?: string; mac?: string; ifname: string; dhcp?: boolean; agent?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const port = await attach(ctx, agentClient(opts.agent), {
        netns: ns,
        network: opts.network,
        ifname: opts.ifname,
        ...(opts.ip ? { ip: opts.ip } : {}),
        ...(opts.mac ? { mac: opts.mac } : {}),
        ...(opts.dhcp ? { dhcp: true } : {}),
      });
      if (ctx.output === 'json') return emit('json', port, [], []);
      const how = port['dhcp'] ? 'address by DHCP' : `${String(port['address'])}/${String(port['prefix_len'])} via ${String(port['gateway'] ?? '-')}`;
      console.log(`attached ${ns} to ${opts.network}: ${opts.ifname} ${how}, mac ${String(port['mac'])}`);
    });
  netns
    .command('detach <netns>')
    .description('remove what attach made: the plumbing, the API objects, and the namespace if attach created it')
    .option('--agent <url>', 'the local agent (default $CIRRUS_AGENT or http://127.0.0.1:9091)')
    .action(async (ns: string, opts: { agent?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const vmis = await detach(ctx, agentClient(opts.agent), ns);
      if (ctx.output === 'json') console.log(JSON.stringify({ detached: ns, interfaces: vmis }));
      else console.log(`detached ${ns} (${vmis.length} interface${vmis.length === 1 ? '' : 's'})`);
    });
}
