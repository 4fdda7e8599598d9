// cirrus port create|list|show|delete: a port is an interface (virtual-machine-interface)
// with its address (instance-ip), optionally owned by a workload (virtual-machine).

import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import type { ApiClient } from '../client.js';
import { contextOf } from '../context.js';
import { ownedFqName, resolve } from '../names.js';
import { projectListQuery, readNamed } from './common.js';
import { emit } from '../output.js';

type Json = Record<string, unknown>;

const COLUMNS = ['name', 'uuid', 'network', 'ip', 'mac', 'vm', 'host'];

function row(vmi: Json, ips: Json[]): Json {
  const bindings = ((vmi['virtual_machine_interface_bindings'] as Json | undefined)?.['key_value_pair'] ?? []) as Json[];
  return {
    name: (vmi['fq_name'] as string[]).join(':'),
    uuid: vmi['uuid'],
    network: ((vmi['virtual_network_refs'] ?? []) as Json[]).map((r) => (r['to'] as string[]).at(-1)),
    ip: ips.map((i) => i['instance_ip_address']),
    mac: ((vmi['virtual_machine_interface_mac_addresses'] as Json | undefined)?.['mac_address'] ?? []) as string[],
    vm: ((vmi['virtual_machine_refs'] ?? []) as Json[]).map((r) => (r['to'] as string[]).at(-1)),
    host: bindings.find((b) => b['key'] === 'host_id')?.['value'],
  };
}

async function addressesOf(api: ApiClient, vmiUuid: string): Promise<Json[]> {
  return api.listDetail('instance-ip', `back_ref_id=${vmiUuid}`);
}

/** Deletes what a failed create made, newest first; reports but does not mask the original error. */
async function rollback(api: ApiClient, made: { type: string; uuid: string }[]): Promise<void> {
  for (const m of made.reverse()) {
    await api.delete(m.type, m.uuid).catch((e: Error) => console.error(`cirrus: rollback of ${m.type} ${m.uuid} failed: ${e.message}`));
  }
}

export function portCommands(program: Command): void {
  const port = program.command('port').description('ports: interfaces of workloads in networks');

  port
    .command('create')
    .description('create an interface in a network with an address (allocated unless --ip)')
    .requiredOption('--network <network>', 'the network (NAME, DOMAIN:PROJECT:NAME or uuid)')
    .option('--vm <name>', 'the workload owning the port (created when missing)')
    .option('--name <name>', 'port name (default: VM-NETWORK, or port-<id>)')
    .option('--ip <address>', 'a fixed address instead of an allocated one')
    .option('--mac <mac>', 'a fixed MAC instead of 02:<uuid bytes>')
    .option('--host <host>', 'bind the port to this host (virtual-router name)')
    .action(async (opts: { network: string; vm?: string; name?: string; ip?: string; mac?: string; host?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const api = ctx.api;
      const vn = await resolve(api, 'virtual-network', opts.network, ctx.project);
      const uuid = randomUUID();
      const name = opts.name ?? (opts.vm ? `${opts.vm}-${vn.fq_name.at(-1)}` : `port-${uuid.slice(0, 8)}`);
      const made: { type: string; uuid: string }[] = [];
      try {
        const vmi: Json = { uuid, fq_name: ownedFqName(name, ctx.project), parent_type: 'project', virtual_network_refs: [{ uuid: vn.uuid }] };
        if (opts.vm) {
          let vmUuid = await api.uuidOf('virtual-machine', [opts.vm]);
          if (!vmUuid) {
            vmUuid = (await api.create('virtual-machine', { fq_name: [opts.vm] }))['uuid'] as string;
            made.push({ type: 'virtual-machine', uuid: vmUuid });
          }
          vmi['virtual_machine_refs'] = [{ uuid: vmUuid }];
        }
        if (opts.mac) vmi['virtual_machine_interface_mac_addresses'] = { mac_address: [opts.mac] };
        if (opts.host) vmi['virtual_machine_interface_bindings'] = { key_value_pair: [{ key: 'host_id', value: opts.host }] };
        await api.create('virtual-machine-interface', vmi);
        made.push({ type: 'virtual-machine-interface', uuid });
        const iip: Json = { fq_name: [uuid], virtual_network_refs: [{ uuid: vn.uuid }], virtual_machine_interface_refs: [{ uuid }] };
        if (opts.ip) iip['instance_ip_address'] = opts.ip;
        await api.create('instance-ip', iip);
      } catch (e) {
        await rollback(api, made);
        throw e;
      }
      const vmi = await api.read('virtual-machine-interface', uuid);
      const ips = await addressesOf(api, uuid);
      emit(ctx.output, { ...vmi, instance_ips: ips }, [row(vmi, ips)], COLUMNS);
    });

  port
    .command('list')
    .description('list the ports of the project')
    .option('--network <network>', 'only ports of this network')
    .action(async (opts: { network?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const api = ctx.api;
      const query = opts.network
        ? `back_ref_id=${(await resolve(api, 'virtual-network', opts.network, ctx.project)).uuid}`
        : projectListQuery(ctx);
      const vmis = await api.listDetail('virtual-machine-interface', query);
      const ips = vmis.length ? await api.listDetail('instance-ip', `back_ref_id=${vmis.map((v) => v['uuid']).join(',')}`) : [];
      const ipsOf = (u: unknown) => ips.filter((i) => ((i['virtual_machine_interface_refs'] ?? []) as Json[]).some((r) => r['uuid'] === u));
      emit(ctx.output, vmis.map((v) => ({ ...v, instance_ips: ipsOf(v['uuid']) })), vmis.map((v) => row(v, ipsOf(v['uuid']))), COLUMNS);
    });

  port
    .command('show <port>')
    .description('show a port (NAME, DOMAIN:PROJECT:NAME or uuid)')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const vmi = await readNamed(ctx, 'virtual-machine-interface', ref);
      const ips = await addressesOf(ctx.api, vmi['uuid'] as string);
      emit(ctx.output, { ...vmi, instance_ips: ips }, [row(vmi, ips)], COLUMNS);
    });

  port
    .command('delete <port>')
    .description('delete a port, its addresses, and its VM when the VM has no other port left')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const api = ctx.api;
      const { uuid, fq_name } = await resolve(api, 'virtual-machine-interface', ref, ctx.project);
      const vmi = await api.read('virtual-machine-interface', uuid);
      for (const ip of await addressesOf(api, uuid)) await api.delete('instance-ip', ip['uuid'] as string);
      await api.delete('virtual-machine-interface', uuid);
      for (const vmRef of (vmi['virtual_machine_refs'] ?? []) as Json[]) {
        const vm = await api.read('virtual-machine', vmRef['uuid'] as string);
        const inUse = Object.keys(vm).some((k) => k.endsWith('_back_refs') || k === 'virtual_machine_interfaces');
        if (!inUse) await api.delete('virtual-machine', vm['uuid'] as string);
      }
      if (ctx.output === 'json') console.log(JSON.stringify({ deleted: uuid }));
      else console.log(`deleted port ${fq_name.join(':')} (${uuid})`);
    });
}
