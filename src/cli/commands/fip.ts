// cirrus fip create|list|delete: floating IPs. One port: a second address of the workload
// (NAT); several: an ECMP service address (each new connection picks one back end).

import type { Command } from 'commander';
import { type ApiClient, CliError } from '../client.js';
import { type CliContext, contextOf } from '../context.js';
import { projectFqName, resolve } from '../names.js';
import { emit } from '../output.js';
import { isIpv4 } from '../../util/ipv4.js';

type Json = Record<string, unknown>;

/** The pool `fip create` uses in a network when none is named. */
export const DEFAULT_POOL = 'default';

const COLUMNS = ['address', 'network', 'ports', 'mode', 'uuid'];

function row(fip: Json, portNames: Map<string, string>): Json {
  const refs = (fip['virtual_machine_interface_refs'] ?? []) as Json[];
  const fq = fip['fq_name'] as string[];
  return {
    address: fip['floating_ip_address'],
    network: fq.slice(0, -2).join(':'),
    ports: refs.map((r) => portNames.get(r['uuid'] as string) ?? (r['to'] as string[]).at(-1)),
    mode: refs.length > 1 ? `ECMP (${refs.length})` : refs.length ? 'NAT' : 'unassigned',
    uuid: fip['uuid'],
  };
}

/** A port by name, fq_name or uuid, or a workload (virtual-machine) name standing for its ports. */
async function portsOf(ctx: CliContext, ref: string): Promise<{ uuid: string; fq_name: string[] }[]> {
  const api = ctx.api;
  const vmi = await resolve(api, 'virtual-machine-interface', ref, ctx.project).catch((e: unknown) => {
    if (e instanceof CliError && /does not exist/.test(e.message)) return undefined;
    throw e;
  });
  if (vmi) return [vmi];
  const vm = await api.uuidOf('virtual-machine', [ref]);
  if (vm) {
    const vmis = await api.listDetail('virtual-machine-interface', `back_ref_id=${vm}`);
    const children = await api.listDetail('virtual-machine-interface', `parent_id=${vm}`);
    const all = [...vmis, ...children];
    if (all.length) return [...new Map(all.map((v) => [v['uuid'] as string, { uuid: v['uuid'] as string, fq_name: v['fq_name'] as string[] }])).values()];
  }
  throw new CliError(`--port: no port or workload '${ref}'`);
}

/** The network's pool (created when missing). */
async function poolOf(api: ApiClient, network: { uuid: string; fq_name: string[] }, name: string): Promise<string[]> {
  const fq = [...network.fq_name, name];
  if (!(await api.uuidOf('floating-ip-pool', fq))) await api.create('floating-ip-pool', { fq_name: fq, parent_type: 'virtual-network' });
  return fq;
}

async function portNames(api: ApiClient, fips: Json[]): Promise<Map<string, string>> {
  const uuids = [...new Set(fips.flatMap((f) => ((f['virtual_machine_interface_refs'] ?? []) as Json[]).map((r) => r['uuid'] as string)))];
  if (!uuids.length) return new Map();
  const vmis = await api.listDetail('virtual-machine-interface', `obj_uuids=${uuids.join(',')}`);
  return new Map(vmis.map((v) => [v['uuid'] as string, (v['fq_name'] as string[]).at(-1)!]));
}

export function fipCommands(program: Command): void {
  const fip = program.command('fip').description('floating IPs: a NAT address of one port, or an ECMP service address of several');

  fip
    .command('create')
    .description('give ports an address of a network (its pool); several ports: ECMP, each new connection picks one')
    .requiredOption('--pool <network>', "the network the address comes from (its pool 'default', created when missing)")
    .option('--pool-name <name>', 'a pool of the network other than the default one', DEFAULT_POOL)
    .option('--ip <address>', 'a fixed address instead of an allocated one')
    .requiredOption('--port <port...>', 'ports (name, DOMAIN:PROJECT:NAME or uuid), or workloads standing for their ports')
    .option('--name <name>', 'its name in the pool (default: fip-<address>)')
    .action(async (opts: { pool: string; poolName: string; ip?: string; port: string[]; name?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const api = ctx.api;
      if (opts.ip !== undefined && !isIpv4(opts.ip)) throw new CliError(`--ip: '${opts.ip}' is not an IPv4 address`);
      const network = await resolve(api, 'virtual-network', opts.pool, ctx.project);
      const ports = (await Promise.all(opts.port.map((p) => portsOf(ctx, p)))).flat();
      const pool = await poolOf(api, network, opts.poolName);
      const name = opts.name ?? `fip-${opts.ip ?? Date.now().toString(36)}`;
      const created = await api.create('floating-ip', {
        fq_name: [...pool, name],
        parent_type: 'floating-ip-pool',
        ...(opts.ip ? { floating_ip_address: opts.ip } : {}),
        virtual_machine_interface_refs: ports.map((p) => ({ to: p.fq_name })),
        project_refs: [{ to: projectFqName(ctx.project) }],
      });
      const obj = await api.read('floating-ip', created['uuid'] as string);
      emit(ctx.output, obj, [row(obj, await portNames(api, [obj]))], COLUMNS);
    });

  fip
    .command('list')
    .description('list floating IPs (all networks, or one pool network)')
    .option('--pool <network>', 'only those of this network')
    .action(async (opts: { pool?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const api = ctx.api;
      let fips = await api.listDetail('floating-ip');
      if (opts.pool) {
        const { fq_name } = await resolve(api, 'virtual-network', opts.pool, ctx.project);
        fips = fips.filter((f) => (f['fq_name'] as string[]).slice(0, -2).join(':') === fq_name.join(':'));
      }
      const names = await portNames(api, fips);
      emit(ctx.output, fips, fips.map((f) => row(f, names)), COLUMNS);
    });

  fip
    .command('delete <fip>')
    .description('delete a floating IP (its address, DOMAIN:PROJECT:NETWORK:POOL:NAME or uuid); connections through it end')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const api = ctx.api;
      let uuid: string;
      if (isIpv4(ref)) {
        const match = (await api.listDetail('floating-ip')).filter((f) => f['floating_ip_address'] === ref);
        if (match.length !== 1) throw new CliError(match.length ? `${ref} is the address of ${match.length} floating IPs (in different networks): give its uuid` : `no floating IP has the address ${ref}`);
        uuid = match[0]!['uuid'] as string;
      } else uuid = (await resolve(api, 'floating-ip', ref, ctx.project)).uuid;
      await api.delete('floating-ip', uuid);
      if (ctx.output === 'json') console.log(JSON.stringify({ deleted: uuid }));
      else console.log(`deleted floating-ip ${ref} (${uuid})`);
    });
}
