// cirrus network create|list|show|delete

import type { Command } from 'commander';
import { CliError } from '../client.js';
import { contextOf } from '../context.js';
import { projectFqName, resolve } from '../names.js';
import { addDeleteVerb, projectListQuery, readNamed } from './common.js';
import { emit } from '../output.js';

type Json = Record<string, unknown>;

/** The network's subnets as "cidr (gw X)" strings. */
export function subnetsOfNetwork(vn: Json): { cidr: string; gateway: string; dns: string }[] {
  return ((vn['network_ipam_refs'] ?? []) as Json[]).flatMap((r) =>
    (((r['attr'] as Json | null)?.['ipam_subnets'] ?? []) as Json[]).map((s) => {
      const sn = s['subnet'] as Json;
      return { cidr: `${String(sn['ip_prefix'])}/${String(sn['ip_prefix_len'])}`, gateway: String(s['default_gateway']), dns: String(s['dns_server_address']) };
    }),
  );
}

function row(vn: Json): Json {
  const subnets = subnetsOfNetwork(vn);
  const props = (vn['virtual_network_properties'] ?? {}) as Json;
  return {
    name: (vn['fq_name'] as string[]).join(':'),
    uuid: vn['uuid'],
    id: vn['virtual_network_network_id'],
    subnets: subnets.map((s) => s.cidr),
    gateways: subnets.map((s) => s.gateway),
    vni: props['vxlan_network_identifier'],
    policies: ((vn['network_policy_refs'] ?? []) as Json[]).map((p) => (p['to'] as string[]).at(-1)),
    external: vn['router_external'] === true,
    snat: vn['cirrus_snat'] === true,
  };
}

const COLUMNS = ['name', 'uuid', 'id', 'subnets', 'gateways', 'vni', 'policies', 'external', 'snat'];

/** on|off → boolean, for `network set`. */
function onOff(flag: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'on' || value === 'off') return value === 'on';
  throw new CliError(`${flag}: '${value}' is not on or off`);
}

export function networkCommands(program: Command): void {
  const network = program.command('network').description('virtual networks');

  network
    .command('create <name>')
    .description('create a virtual network with one or more subnets')
    .option('--subnet <cidr...>', 'subnet(s), e.g. 192.168.10.0/24 (gateway .1, DNS .2, hosts from .3)')
    .option('--ipam <name>', 'network-ipam of the project', 'default-network-ipam')
    .option('--vni <n>', 'VXLAN network identifier (allocated when omitted)')
    .option('--external', 'public network (router_external): floating IPs reachable from outside')
    .option('--shared', 'usable by other projects')
    .action(async (name: string, opts: { subnet?: string[]; ipam: string; vni?: string; external?: boolean; shared?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const project = projectFqName(ctx.project);
      const vni = opts.vni === undefined ? undefined : Number(opts.vni);
      if (vni !== undefined && !(Number.isInteger(vni) && vni >= 1 && vni <= 8388607)) throw new CliError(`--vni: '${opts.vni}' is not 1-8388607`);
      const subnets = (opts.subnet ?? []).map((cidr) => {
        const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
        if (!m) throw new CliError(`--subnet: '${cidr}' is not a CIDR like 192.168.10.0/24`);
        return { subnet: { ip_prefix: m[1], ip_prefix_len: Number(m[2]) }, addr_from_start: true };
      });
      const body: Json = { fq_name: [...project, name], parent_type: 'project' };
      if (subnets.length) body['network_ipam_refs'] = [{ to: [...project, opts.ipam], attr: { ipam_subnets: subnets } }];
      if (vni !== undefined) body['virtual_network_properties'] = { vxlan_network_identifier: vni };
      if (opts.external) body['router_external'] = true;
      if (opts.shared) body['is_shared'] = true;
      const created = await ctx.api.create('virtual-network', body);
      const vn = await ctx.api.read('virtual-network', created['uuid'] as string);
      emit(ctx.output, vn, [row(vn)], COLUMNS);
    });

  network
    .command('list')
    .description('list the networks of the project (--all: of every project)')
    .option('--all', 'every project')
    .action(async (opts: { all?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const vns = await ctx.api.listDetail('virtual-network', opts.all ? '' : projectListQuery(ctx));
      emit(ctx.output, vns, vns.map(row), COLUMNS);
    });

  network
    .command('show <network>')
    .description('show a network (NAME, DOMAIN:PROJECT:NAME or uuid)')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const vn = await readNamed(ctx, 'virtual-network', ref);
      if (ctx.output === 'json') return emit('json', vn, [], []);
      const r = row(vn);
      for (const c of COLUMNS) console.log(`${c.padEnd(10)} ${Array.isArray(r[c]) ? (r[c] as unknown[]).join(', ') || '-' : String(r[c] ?? '-')}`);
      console.log(`${'ports'.padEnd(10)} ${((vn['virtual_machine_interface_back_refs'] ?? []) as Json[]).length}`);
    });

  network
    .command('set <network>')
    .description('change a network: source NAT to the outside through the gateway (cirrus_snat), public (router_external)')
    .option('--snat <on|off>', "its workloads open connections to the outside through the gateway, masqueraded; inbound stays closed")
    .option('--external <on|off>', 'public network: its floating IPs are reachable from outside through the gateway')
    .action(async (ref: string, opts: { snat?: string; external?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const props: Json = {};
      const snat = onOff('--snat', opts.snat);
      const external = onOff('--external', opts.external);
      if (snat !== undefined) props['cirrus_snat'] = snat;
      if (external !== undefined) props['router_external'] = external;
      if (!Object.keys(props).length) throw new CliError('nothing to set: give --snat on|off or --external on|off');
      const { uuid } = await resolve(ctx.api, 'virtual-network', ref, ctx.project);
      await ctx.api.update('virtual-network', uuid, props);
      const vn = await ctx.api.read('virtual-network', uuid);
      emit(ctx.output, vn, [row(vn)], COLUMNS);
    });

  addDeleteVerb(network, 'virtual-network', 'delete a network (refused while ports or pools use it)');
}
