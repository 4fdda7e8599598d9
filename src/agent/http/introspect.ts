// The agent's introspect (TF's port 8085): health, Prometheus metrics, JSON views of
// interfaces, networks (VRFs) and their kernel routes, and TF's Sandesh requests for TF's
// tools (Snh_ItfReq, Snh_VrfListReq, Snh_Inet4UcRouteReq). Everything is read when asked:
// the agent's last computed state, its control node document, and the kernel itself.

import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { errorBody } from '../../api/http.js';
import { type NetworkEntry, type PortEntry, netKey, portKey } from '../../control/protocol.js';
import { isIpv4 } from '../../util/ipv4.js';
import type { Agent, PortStatus } from '../agent.js';
import { readAclHits } from '../dataplane/acl-hits.js';
import { type IpRoute, parseIpRoutes, run } from '../dataplane/kernel.js';
import { hostIfName } from '../dataplane/names.js';
import type { NetworkState } from '../host-state.js';
import { portView } from './port-api.js';
import { type ItfRow, type RouteRow, errorResponse, inet4UcRouteResponse, itfResponse, vrfListResponse } from './sandesh.js';


/** TF names a network's routing instance <network fq_name>:<network name>. */
export function tfVrfName(networkName: string): string {
  return `${networkName}:${networkName.slice(networkName.lastIndexOf(':') + 1)}`;
}

async function ipJson<T>(args: string[]): Promise<T[]> {
  const r = await run('ip', ['-j', ...args]);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as T[]) : [];
}

/** The routes of one table; a table without routes does not exist for the kernel. */
async function readTable(table: number): Promise<IpRoute[]> {
  const r = await run('ip', ['-j', 'route', 'show', 'table', String(table)]);
  if (r.code !== 0) {
    if (/does not exist/.test(r.stderr)) return [];
    throw new Error(`ip route show table ${table}: ${r.stderr.trim()}`);
  }
  return parseIpRoutes(r.stdout);
}

/** Interface name → kernel ifindex. */
async function readIfindexes(): Promise<Map<string, number>> {
  const links = await ipJson<{ ifindex: number; ifname: string }>(['link', 'show']);
  return new Map(links.map((l) => [l.ifname, l.ifindex]));
}

/** A query parameter as one string ('' when absent; the first when repeated). */
function param(query: unknown, key: string): string {
  const v = (query as Record<string, unknown> | undefined)?.[key];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s.trim() : '';
}

function xml(reply: FastifyReply, body: string): FastifyReply {
  return reply.type('text/xml; charset=utf-8').send(body);
}

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** TF shows VLAN ids as i16: 0xFFFF (TF's "none") reads -1. */
function vlan(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= -32768 && v <= 65535 ? (v << 16) >> 16 : -1;
}

/** What the control node said about a port's interface: its VM, network name and project. */
function configOf(agent: Agent, p: PortStatus): { vm?: { uuid: string; name: string }; vnName: string; projectUuid?: string } {
  const doc = agent.control.doc;
  const port = doc?.get(portKey(p.registration.vmiUuid)) as PortEntry | undefined;
  const net = port ? (doc?.get(netKey(port.network)) as NetworkEntry | undefined) : undefined;
  return { ...(port?.vm ? { vm: port.vm } : {}), vnName: net?.name ?? '', ...(port?.project ? { projectUuid: port.project } : {}) };
}

/** Every registered port as a TF interface, in registration order. */
function itfRows(agent: Agent, ifindexes: ReadonlyMap<string, number>): ItfRow[] {
  const ports = agent.ports().sort((a, b) => a.registration.createdAt.localeCompare(b.registration.createdAt) || a.registration.vmiUuid.localeCompare(b.registration.vmiUuid));
  return ports.map((p, index) => {
    const r = p.registration;
    const tf = r.tf ?? {};
    const { vm, vnName, projectUuid } = configOf(agent, p);
    const name = p.state?.hostIf ?? r.hostIf ?? hostIfName(r.vmiUuid);
    return {
      index,
      name,
      uuid: r.vmiUuid,
      vrfName: vnName ? tfVrfName(vnName) : '',
      active: p.status === 'active',
      enabled: r.enabled,
      mac: p.state?.mac ?? text(tf['mac-address']) ?? '',
      ip: p.state?.address ?? text(tf['ip-address']) ?? '',
      vmUuid: vm?.uuid ?? text(tf['instance-id']) ?? '',
      vmName: vm?.name ?? text(tf['display-name']) ?? '',
      vnName,
      projectUuid: projectUuid ?? text(tf['vm-project-id']) ?? '',
      osIfindex: ifindexes.get(name) ?? -1,
      rxVlan: vlan(tf['rx-vlan-id']),
      txVlan: vlan(tf['tx-vlan-id']),
    };
  });
}

/** A table's kernel routes as TF routes: local ports, the host's own addresses, drops. */
function routeRows(agent: Agent, net: NetworkState, routes: IpRoute[], ifindexes: ReadonlyMap<string, number>): RouteRow[] {
  const vrf = tfVrfName(net.name);
  const macs = new Map((agent.state.host?.ports ?? []).map((p) => [p.hostIf, p.mac]));
  // A tunnel's VNI tells whose address it is (the network's own, or a leaked one's); its path came from the control node.
  const tunnelNetwork = (vni?: number) => agent.state.host?.networks.find((n) => n.vni === vni);
  const control = agent.control.status().find((s) => s.active)?.node ?? 'control';
  return routes.map((r) => {
    const [prefix, len] = r.dst === 'default' ? ['0.0.0.0', '0'] : r.dst.split('/');
    const plen = len === undefined ? 32 : Number(len);
    const index = (dev?: string) => (dev ? (ifindexes.get(dev) ?? 0) : 0);
    if (r.type === 'local') return { prefix: prefix!, plen, vrf, vn: net.name, peer: 'Local', nh: { type: 'receive', index: index(r.dev), itf: r.dev ?? 'lo' } };
    if (r.type && r.type !== 'unicast') return { prefix: prefix!, plen, vrf, vn: '', peer: 'Local', nh: { type: 'discard', index: 0 } };
    if (r.encap === 'ip' && r.encap_dst) {
      const vn = tunnelNetwork(r.id);
      return { prefix: prefix!, plen, vrf, vn: vn?.name ?? net.name, peer: control, nh: { type: 'tunnel', index: index(r.dev), sip: agent.opts.underlayIp ?? '', dip: r.encap_dst, vni: r.id ?? 0 } };
    }
    const nh = { type: 'interface' as const, index: index(r.dev), itf: r.dev ?? '', mac: (r.dev && macs.get(r.dev)) || '00:00:00:00:00:00' };
    return { prefix: prefix!, plen, vrf, vn: net.name, peer: 'LocalVmPort', nh };
  });
}

export async function buildIntrospect(agent: Agent): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'warn' } });
  const networks = (): NetworkState[] => agent.state.host?.networks ?? [];
  const portsIn = (uuid: string) => (agent.state.host?.ports ?? []).filter((p) => p.network === uuid).length;

  app.get('/healthz', async (_req, reply) => {
    const { last } = agent.state;
    const healthy = agent.control.doc !== undefined;
    const sessions = agent.control.status();
    const synced = sessions.some((s) => s.synced);
    return reply.code(healthy ? 200 : 503).send({
      status: healthy ? (synced ? 'ok' : 'headless') : 'waiting for a control node',
      host: agent.opts.host,
      control: sessions,
      last_reconcile: last ? { duration_ms: Math.round(last.durationMs * 10) / 10, phases_ms: Object.fromEntries(Object.entries(last.phases).map(([k, v]) => [k, Math.round(v * 10) / 10])), changes: last.changes, errors: last.errors.length } : null,
    });
  });

  app.get('/metrics', async (_req, reply) => reply.type(agent.metrics.contentType).send(await agent.metrics.metrics()));

  app.get('/interfaces', async () => ({ interfaces: agent.ports().map(portView) }));

  // The flow worker (restarts, how the last one ended) and its pipeline's counters.
  app.get('/flows', async () => {
    const s = await agent.flowStats();
    return s ? { enabled: true, ...s } : { enabled: false };
  });

  // Policies of the networks with ports here, as compiled rules (first match wins; an
  // unmatched connection passes inside its network and is dropped between networks).
  app.get('/policies', async () => ({
    networks: networks()
      .filter((n) => n.acl)
      .map((n) => ({ name: n.name, uuid: n.uuid, network_id: n.id, rules: n.acl })),
  }));

  // What each deciding rule has counted: policy rules by uuid, defaults, anti-spoofing, host protection.
  app.get('/acl-hits', async () => {
    const byId = new Map(networks().map((n) => [n.id, n.name]));
    return {
      hits: (await readAclHits()).map((h) => {
        const m = /^pol_(out|in)_(\d+)$/.exec(h.chain);
        return { ...h, ...(m ? { side: m[1], network: byId.get(Number(m[2])) ?? null } : {}) };
      }),
    };
  });

  // DHCP leases and unanswered packets; the names each network resolves (services/).
  app.get('/dhcp', async () => agent.services.dhcpView());
  app.get('/dns', async () => agent.services.dnsView());

  app.get('/vrfs', async () => ({
    vrfs: networks().map((n) => ({ name: n.name, uuid: n.uuid, table: n.table, network_id: n.id, interfaces: portsIn(n.uuid), tf_name: tfVrfName(n.name) })),
  }));

  app.get('/routes', async (req, reply) => {
    const name = param(req.query, 'vrf');
    if (!name) return reply.code(400).send(errorBody(400, 'vrf: a network name (DOMAIN:PROJECT:NAME), its uuid or its TF VRF name is required', 'vrf'));
    const net = networks().find((n) => n.name === name || n.uuid === name || tfVrfName(n.name) === name);
    if (!net) return reply.code(404).send(errorBody(404, `no vrf ${name} on this host (networks with ports here: GET /vrfs)`, 'vrf'));
    return { vrf: net.name, uuid: net.uuid, table: net.table, routes: await readTable(net.table) };
  });

  // ---- TF's Sandesh requests (HTTP 200 with an ErrorResp for bad input, as TF does) ----

  app.get('/Snh_ItfReq', async (req, reply) => {
    const [name, uuid, vn, mac, ip] = ['name', 'uuid', 'vn', 'mac', 'ipv4_address'].map((k) => param(req.query, k)) as [string, string, string, string, string];
    const rows = itfRows(agent, await readIfindexes()).filter(
      (r) =>
        r.name.includes(name) &&
        (!uuid || r.uuid === uuid.toLowerCase()) &&
        r.vnName.includes(vn) &&
        (!mac || r.mac === mac.toLowerCase()) &&
        (!ip || r.ip === ip),
    );
    return xml(reply, itfResponse(rows));
  });

  app.get('/Snh_VrfListReq', async (req, reply) => {
    const name = param(req.query, 'name');
    const rows = networks()
      .map((n) => ({ name: tfVrfName(n.name), index: n.id, vn: n.name, vxlanId: n.vni }))
      .filter((r) => r.name.includes(name));
    return xml(reply, vrfListResponse(rows));
  });

  app.get('/Snh_Inet4UcRouteReq', async (req, reply) => {
    const index = param(req.query, 'vrf_index');
    const srcIp = param(req.query, 'src_ip');
    const plenText = param(req.query, 'prefix_len');
    const net = /^\d+$/.test(index) ? networks().find((n) => n.id === Number(index)) : undefined;
    if (!net) return xml(reply, errorResponse(`Invalid VRF index '${index}' (Snh_VrfListReq lists the ucindex of each VRF)`));
    if (srcIp && !isIpv4(srcIp)) return xml(reply, errorResponse(`Invalid src_ip '${srcIp}'`));
    if (plenText && !(/^\d+$/.test(plenText) && Number(plenText) <= 32)) return xml(reply, errorResponse(`Invalid prefix_len '${plenText}'`));
    const plen = plenText ? Number(plenText) : 32;
    const [routes, ifindexes] = await Promise.all([readTable(net.table), readIfindexes()]);
    const rows = routeRows(agent, net, routes, ifindexes).filter((r) => !srcIp || (r.prefix === srcIp && r.plen === plen));
    return xml(reply, inet4UcRouteResponse(rows));
  });

  return app;
}
