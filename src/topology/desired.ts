// From a checked file to the objects it wants, each with its comparable spec and the body
// the API gets. Rules, addresses and names are checked here; every error points into the
// file. Pure: no API, no lab.

import { projectFqName } from '../cli/names.js';
import { RuleSyntaxError, formatRule, parseRule } from '../cli/rule-syntax.js';
import { formatSgRule, parseSgRule } from '../cli/sg-rule-syntax.js';
import { workloadPortName } from '../lab/layout.js';
import { cidrContains, formatCidr, parseCidr, parseIpv4 } from '../util/ipv4.js';
import type { LoadedTopology, SpecPath } from './load.js';
import type { DesiredObject, ExternalRef } from './model.js';

type Json = Record<string, unknown>;

export interface DesiredState {
  project: string[];
  objects: DesiredObject[];
  /** Objects the file names without declaring them. */
  external: ExternalRef[];
}

export const DEFAULT_IPAM = 'default-network-ipam';
/** One pool per network, named as TF's Neutron plugin names it. */
export const POOL_NAME = 'floating-ip-pool';

export function desiredState(loaded: LoadedTopology, defaultProject: string): DesiredState {
  const t = loaded.topology;
  const fail: LoadedTopology['fail'] = loaded.fail;
  const project = projectFqName(t.project ?? defaultProject);
  const objects: DesiredObject[] = [];
  const external: ExternalRef[] = [];
  const add = (o: DesiredObject) => objects.push(o);

  /** NAME (in the file's project) or DOMAIN:PROJECT:NAME. */
  const fqOf = (ref: string, at: SpecPath): string[] => {
    if (!ref.includes(':')) return [...project, ref];
    const parts = ref.split(':');
    if (parts.length !== 3 || !parts.every(Boolean)) fail(at, `'${ref}' is not NAME or DOMAIN:PROJECT:NAME`);
    return parts;
  };
  /** The fq_name of `ref`; objects the file does not declare are recorded as external. */
  const refer = (type: ExternalRef['type'], declared: ReadonlySet<string>, ref: string, at: SpecPath): string[] => {
    const fq = fqOf(ref, at);
    if (!declared.has(fq.join(':'))) external.push({ type, fq, at });
    return fq;
  };
  const unique = (section: string, names: string[]): Set<string> => {
    const seen = new Set<string>();
    names.forEach((n, i) => {
      if (seen.has(n)) fail([section, i, 'name'], `'${n}' is declared twice`);
      seen.add(n);
    });
    return new Set(names.map((n) => [...project, n].join(':')));
  };
  const noRepeats = (list: string[], at: SpecPath) =>
    list.forEach((v, i) => {
      if (list.indexOf(v) !== i) fail([...at, i], `'${v}' is listed twice`);
    });

  const networks = t.networks ?? [];
  const workloads = t.workloads ?? [];
  const networkNames = unique('networks', networks.map((n) => n.name));
  const policyNames = unique('policies', (t.policies ?? []).map((p) => p.name));
  const groupNames = unique('security_groups', (t.security_groups ?? []).map((g) => g.name));
  unique('floating_ips', (t.floating_ips ?? []).map((f) => f.name));
  const workloadNames = new Set(workloads.map((w) => w.name));
  unique('workloads', workloads.map((w) => w.name));

  add({ kind: 'project', fq: project, spec: {}, body: {}, at: t.project ? ['project'] : [] });
  const ipam = [...project, DEFAULT_IPAM];
  if (networks.length) add({ kind: 'network-ipam', fq: ipam, spec: {}, body: {}, at: ['networks'] });

  (t.policies ?? []).forEach((p, i) => {
    const rules = p.rules.map((text, j) => parsed(() => parseRule(text, project, j + 1), ['policies', i, 'rules', j], fail));
    add({
      kind: 'network-policy',
      fq: [...project, p.name],
      spec: { rules: rules.map((r) => formatRule({ ...r })) },
      body: { network_policy_entries: { policy_rule: rules } },
      at: ['policies', i],
    });
  });

  (t.security_groups ?? []).forEach((g, i) => {
    const rules = (g.rules ?? []).map((text, j) => parsed(() => parseSgRule(text, project), ['security_groups', i, 'rules', j], fail));
    add({
      kind: 'security-group',
      fq: [...project, g.name],
      spec: { rules: rules.map(formatSgRule) },
      body: { security_group_entries: { policy_rule: rules } },
      at: ['security_groups', i],
    });
  });

  const subnetsOf = new Map<string, { base: number; prefixLen: number }[]>();
  networks.forEach((n, i) => {
    const at: SpecPath = ['networks', i];
    const subnets = (n.subnets ?? []).map((s, j) => {
      const where: SpecPath = [...at, 'subnets', j];
      const given = typeof s === 'string' ? { cidr: s } : s;
      const cidr = parseCidr(given.cidr);
      if (typeof cidr === 'string') fail(typeof s === 'string' ? where : [...where, 'cidr'], cidr);
      for (const field of ['gateway', 'dns'] as const) {
        const v = given[field];
        if (v === undefined) continue;
        const ip = parseIpv4(v);
        if (ip === undefined || !cidrContains(cidr, ip)) fail([...where, field], `'${v}' is not an address of ${given.cidr}`);
      }
      return { cidr, gateway: given.gateway, dns: given.dns };
    });
    const cidrs = subnets.map((s) => formatCidr(s.cidr));
    noRepeats(cidrs, [...at, 'subnets']);
    subnetsOf.set([...project, n.name].join(':'), subnets.map((s) => s.cidr));
    const policies = (n.policies ?? []).map((p, j) => refer('network-policy', policyNames, p, [...at, 'policies', j]).join(':'));
    noRepeats(policies, [...at, 'policies']);
    const body: Json = {
      network_ipam_refs: subnets.length
        ? [
            {
              to: ipam,
              attr: {
                ipam_subnets: subnets.map((s) => ({
                  subnet: { ip_prefix: formatCidr(s.cidr).split('/')[0], ip_prefix_len: s.cidr.prefixLen },
                  addr_from_start: true,
                  ...(s.gateway ? { default_gateway: s.gateway } : {}),
                  ...(s.dns ? { dns_server_address: s.dns } : {}),
                })),
              },
            },
          ]
        : [],
      router_external: n.router_external ?? false,
      is_shared: n.is_shared ?? false,
      network_policy_refs: policies.map((p, k) => ({ to: p.split(':'), attr: { sequence: { major: k, minor: 0 } } })),
    };
    if (n.vni !== undefined) body['virtual_network_properties'] = { vxlan_network_identifier: n.vni };
    if (n.snat !== undefined) body['cirrus_snat'] = n.snat;
    add({
      kind: 'virtual-network',
      fq: [...project, n.name],
      spec: {
        subnets: subnets.map((s, k) => ({ cidr: cidrs[k], gateway: s.gateway, dns: s.dns })),
        vni: n.vni,
        router_external: n.router_external ?? false,
        is_shared: n.is_shared ?? false,
        snat: n.snat,
        policies,
      },
      body,
      at,
    });
  });

  workloads.forEach((w, i) => {
    const at: SpecPath = ['workloads', i];
    const network = refer('virtual-network', networkNames, w.network, [...at, 'network']).join(':');
    if (w.address !== undefined) {
      const ip = parseIpv4(w.address);
      if (ip === undefined) fail([...at, 'address'], `'${w.address}' is not an IPv4 address`);
      const subnets = subnetsOf.get(network);
      if (subnets && !subnets.some((s) => cidrContains(s, ip))) fail([...at, 'address'], `${w.address} is in no subnet of network ${w.network}`);
    }
    const groups = (w.security_groups ?? []).map((g, j) => refer('security-group', groupNames, g, [...at, 'security_groups', j]).join(':'));
    noRepeats(groups, [...at, 'security_groups']);
    const command = w.command ?? [];
    add({
      kind: 'workload',
      fq: [w.name],
      spec: { host: w.host, network, address: w.address, security_groups: [...groups].sort(), command, running: command.length ? true : undefined, attached: true },
      body: { name: w.name, host: w.host, network, address: w.address, security_groups: groups, command },
      at,
    });
  });

  const pools = new Set<string>();
  (t.floating_ips ?? []).forEach((f, i) => {
    const at: SpecPath = ['floating_ips', i];
    const network = refer('virtual-network', networkNames, f.network, [...at, 'network']);
    const pool = [...network, POOL_NAME];
    if (!pools.has(pool.join(':'))) {
      pools.add(pool.join(':'));
      add({ kind: 'floating-ip-pool', fq: pool, spec: {}, body: {}, at: [...at, 'network'] });
    }
    if (f.address !== undefined) {
      const ip = parseIpv4(f.address);
      if (ip === undefined) fail([...at, 'address'], `'${f.address}' is not an IPv4 address`);
      const subnets = subnetsOf.get(network.join(':'));
      if (subnets && !subnets.some((s) => cidrContains(s, ip))) fail([...at, 'address'], `${f.address} is in no subnet of network ${f.network}`);
    }
    const ports = f.ports.map((p, j) =>
      workloadNames.has(p) ? [...project, workloadPortName(p)].join(':') : refer('virtual-machine-interface', new Set(), p, [...at, 'ports', j]).join(':'),
    );
    noRepeats(ports, [...at, 'ports']);
    add({
      kind: 'floating-ip',
      fq: [...pool, f.name],
      spec: { address: f.address, ports: [...ports].sort() },
      body: {
        ...(f.address !== undefined ? { floating_ip_address: f.address } : {}),
        virtual_machine_interface_refs: ports.map((p) => ({ to: p.split(':') })),
        project_refs: [{ to: project }],
      },
      at,
    });
  });

  return { project, objects, external };
}

function parsed<T>(parse: () => T, at: SpecPath, fail: LoadedTopology['fail']): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof RuleSyntaxError) fail(at, e.message);
    throw e;
  }
}
