// The agent's port API: Cirrus's own (POST/GET/DELETE /ports: the agent creates the veth
// pair and configures the workload) and TF's (POST /port with vrouter-port-control's
// body: the caller made the interface, the agent adopts it). Both end in the same
// registration and reconcile path.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import Fastify, { type FastifyInstance } from 'fastify';
import { errorBody } from '../../api/http.js';
import { ApiError, BadRequest, NotFound } from '../../config/errors.js';
import type { Agent, PortStatus } from '../agent.js';
import { HOST_IF_PREFIX, isValidIfName, isValidNetns } from '../dataplane/names.js';
import type { PortRegistration } from '../ports/registry.js';

/** How long POST /ports waits for the interface's configuration to reach the agent. */
const ATTACH_WAIT_MS = 10_000;

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

export const AddPortBody = Type.Object(
  {
    vmi_uuid: Type.String({ pattern: UUID, description: 'the virtual-machine-interface' }),
    netns: Type.String({ description: 'namespace name (under /run/netns) or path' }),
    ifname: Type.Optional(Type.String({ description: 'interface name in the namespace (default eth0)' })),
    dhcp: Type.Optional(Type.Boolean({ description: 'leave addressing to the workload\'s DHCP client' })),
  },
  { additionalProperties: false },
);

/** vrouter-port-control's body (TF); unknown members are kept and echoed by GET /port. */
export const TfPortBody = Type.Object(
  {
    id: Type.String({ pattern: UUID }),
    'system-name': Type.String(),
    'instance-id': Type.Optional(Type.String()),
    'vn-id': Type.Optional(Type.String()),
    'vm-project-id': Type.Optional(Type.String()),
    'display-name': Type.Optional(Type.String()),
    'ip-address': Type.Optional(Type.String()),
    'ip6-address': Type.Optional(Type.String()),
    'mac-address': Type.Optional(Type.String()),
    type: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 })),
    'rx-vlan-id': Type.Optional(Type.Integer()),
    'tx-vlan-id': Type.Optional(Type.Integer()),
  },
  { additionalProperties: true },
);

const ajv = new Ajv({ strict: false });
const compiled = new Map<TSchema, ReturnType<typeof ajv.compile>>();

function validated<T extends TSchema>(schema: T, body: unknown): Static<T> {
  let check = compiled.get(schema);
  if (!check) compiled.set(schema, (check = ajv.compile(schema)));
  if (body === undefined || !check(body)) {
    const e = check.errors?.[0];
    const field = e ? e.instancePath.slice(1) || (e.params as { missingProperty?: string; additionalProperty?: string }).missingProperty || (e.params as { additionalProperty?: string }).additionalProperty || '' : '';
    throw new BadRequest(e ? `${field}: ${e.keyword === 'additionalProperties' ? 'unknown field' : e.message}` : 'a JSON body is required', field);
  }
  return body as Static<T>;
}

/** A port as the API shows it. */
export function portView(p: PortStatus) {
  const r = p.registration;
  return {
    vmi_uuid: r.vmiUuid,
    mode: r.mode,
    status: p.status,
    ...(p.reason ? { reason: p.reason } : {}),
    host_ifname: p.state?.hostIf ?? r.hostIf,
    ...(r.netns ? { netns: r.netns, ifname: r.ifname } : {}),
    ...(p.state ? { network: p.state.network, address: p.state.address, prefix_len: p.state.prefixLen, gateway: p.state.gateway, mac: p.state.mac } : {}),
    enabled: r.enabled,
    dhcp: r.dhcp ?? false,
  };
}

export async function buildPortApi(agent: Agent): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'warn' }, bodyLimit: 64 * 1024 });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, text, done) => {
    const s = String(text);
    if (!s.trim()) return done(null, undefined);
    try {
      done(null, JSON.parse(s));
    } catch (e) {
      done(new BadRequest(`request body is not valid JSON: ${(e as Error).message}`), undefined);
    }
  });
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send(errorBody(err.status, err.message, err.field));
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    return reply.code(status).send(errorBody(status, status >= 500 ? 'internal error' : (err as Error).message));
  });
  const known = (uuid: string) => {
    const s = agent.portStatus(uuid.toLowerCase());
    if (!s) throw new NotFound(`no port ${uuid} on this host`);
    return s;
  };

  // ---- Cirrus ----
  app.post('/ports', async (req) => {
    const b = validated(AddPortBody, req.body);
    const ifname = b.ifname ?? 'eth0';
    if (!isValidIfName(ifname)) throw new BadRequest(`ifname: '${ifname}' is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`, 'ifname');
    if (!isValidNetns(b.netns)) throw new BadRequest(`netns: '${b.netns}' is not a namespace name or an absolute path`, 'netns');
    const reg: PortRegistration = {
      vmiUuid: b.vmi_uuid.toLowerCase(),
      mode: 'create',
      netns: b.netns,
      ifname,
      ...(b.dhcp ? { dhcp: true } : {}),
      enabled: true,
      createdAt: new Date().toISOString(),
    };
    const status = await agent.addPort(reg, ATTACH_WAIT_MS);
    if (status.status !== 'active') {
      // Nothing half-made stays behind: the caller gets the reason and may retry.
      await agent.deletePort(reg.vmiUuid);
      throw new ApiError(status.status === 'failed' ? 500 : 409, `port ${reg.vmiUuid} could not be plumbed: ${status.reason ?? status.status}`);
    }
    return portView(status);
  });
  app.get('/ports', async () => ({ host: agent.opts.host, ports: agent.ports().map(portView) }));
  app.get<{ Params: { uuid: string } }>('/ports/:uuid', async (req) => portView(known(req.params.uuid)));
  app.delete<{ Params: { uuid: string } }>('/ports/:uuid', async (req) => {
    known(req.params.uuid);
    await agent.deletePort(req.params.uuid.toLowerCase());
    return {};
  });

  // ---- TF (vrouter-port-control, Nova, TF's CNI) ----
  app.post('/port', async (req) => {
    const b = validated(TfPortBody, req.body);
    if (!isValidIfName(b['system-name'])) throw new BadRequest(`system-name: '${b['system-name']}' is not a valid interface name`, 'system-name');
    if (b['system-name'].startsWith(HOST_IF_PREFIX)) throw new BadRequest(`system-name: the ${HOST_IF_PREFIX} prefix is reserved for interfaces the agent creates`, 'system-name');
    const uuid = b.id.toLowerCase();
    const previous = agent.registry.get(uuid);
    await agent.addPort({
      vmiUuid: uuid,
      mode: 'adopt',
      hostIf: b['system-name'],
      enabled: previous?.enabled ?? true,
      tf: b,
      createdAt: previous?.createdAt ?? new Date().toISOString(),
    });
    return {};
  });
  app.get<{ Params: { uuid: string } }>('/port/:uuid', async (req) => {
    const s = known(req.params.uuid);
    return s.registration.tf ?? portView(s);
  });
  app.delete<{ Params: { uuid: string } }>('/port/:uuid', async (req) => {
    known(req.params.uuid);
    await agent.deletePort(req.params.uuid.toLowerCase());
    return {};
  });
  app.put<{ Params: { uuid: string } }>('/enable-port/:uuid', async (req) => {
    known(req.params.uuid);
    await agent.setEnabled(req.params.uuid.toLowerCase(), true);
    return {};
  });
  app.put<{ Params: { uuid: string } }>('/disable-port/:uuid', async (req) => {
    known(req.params.uuid);
    await agent.setEnabled(req.params.uuid.toLowerCase(), false);
    return {};
  });
  app.post('/syncports', async () => {
    await agent.reconciled(agent.schedule());
    return {};
  });
  return app;
}
