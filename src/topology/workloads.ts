// The workload kind: lab workloads (src/lab/workloads.ts, as `lab workload add` makes
// them), known to the API by their virtual-machine (named like the namespace, marked by
// the topology) and port, and to the lab by their record (host, address, program).

import { type ApiClient, CliError } from '../cli/client.js';
import type { CliContext } from '../cli/context.js';
import { type LabState, readWorkload } from '../lab/state.js';
import { programRunning } from '../lab/programs.js';
import { addWorkload, delWorkload, setWorkloadCommand } from '../lab/workloads.js';
import type { ActualObject, DesiredObject } from './model.js';
import { ownerMark, ownerOf } from './ownership.js';
import type { Step } from './plan.js';
import { fqText, list } from './resources.js';

type Json = Record<string, unknown>;

/** The lab a topology's workloads live in, and the CLI context (the lab's API, the file's project) they are made with. */
export interface LabTarget {
  state: LabState;
  ctx: CliContext;
}

interface WorkloadBody {
  name: string;
  host: string;
  network: string;
  address?: string;
  security_groups: string[];
  command: string[];
}

const short = (fq: string): string => fq.split(':').at(-1)!;

async function readPort(api: ApiClient, uuid: string | undefined): Promise<Json | undefined> {
  if (!uuid) return undefined;
  try {
    return await api.read('virtual-machine-interface', uuid);
  } catch (e) {
    if (e instanceof CliError && e.message.endsWith('(HTTP 404)')) return undefined;
    throw e;
  }
}

/** The workloads marked by `topology` or named like one the file wants. */
export async function readWorkloads(api: ApiClient, lab: LabTarget | undefined, topology: string, wanted: ReadonlySet<string>): Promise<ActualObject[]> {
  const vms = (await api.listDetail('virtual-machine')).filter((vm) => ownerOf(vm) === topology || wanted.has((vm['fq_name'] as string[])[0]!));
  const ours = vms.filter((vm) => ownerOf(vm) === topology);
  if (ours.length && !lab) {
    throw new CliError(`topology ${topology} has lab workloads (${ours.map((vm) => (vm['fq_name'] as string[])[0]).join(', ')}): name their lab with --lab`);
  }
  return Promise.all(
    vms.map(async (vm): Promise<ActualObject> => {
      const name = (vm['fq_name'] as string[])[0]!;
      const rec = lab && readWorkload(lab.state.name, name);
      const port = await readPort(api, rec?.vmiUuid);
      const spec: Json =
        rec && port
          ? {
              host: rec.host,
              network: list(port['virtual_network_refs']).map(fqText)[0],
              address: rec.address,
              security_groups: list(port['security_group_refs']).map(fqText).sort(),
              command: rec.command ?? [],
              running: await programRunning(rec.name, rec.process),
              attached: rec.status === 'attached',
            }
          : { attached: false };
      return { kind: 'workload', fq: [name], uuid: vm['uuid'] as string, owner: ownerOf(vm), spec, raw: vm };
    }),
  );
}

function requireLab(lab: LabTarget | undefined): LabTarget {
  if (!lab) throw new CliError('lab workloads need a lab: name it with --lab');
  return lab;
}

const setGroups = (api: ApiClient, port: string, groups: string[]) =>
  api.update('virtual-machine-interface', port, { security_group_refs: groups.map((g) => ({ to: g.split(':') })) });

export async function createWorkload(lab: LabTarget | undefined, d: DesiredObject, topology: string): Promise<string> {
  const { state, ctx } = requireLab(lab);
  const b = d.body as unknown as WorkloadBody;
  const rec = await addWorkload(ctx, state.name, {
    name: b.name,
    host: b.host,
    network: b.network,
    ...(b.address ? { ip: b.address } : {}),
    annotations: [ownerMark(topology)],
    command: b.command,
  });
  if (b.security_groups.length) await setGroups(ctx.api, rec.vmiUuid!, b.security_groups);
  return `workload ${b.name} on ${b.host}: ${rec.address} in ${short(b.network)}${b.command.length ? `, running ${b.command.join(' ')}` : ''}`;
}

export async function updateWorkload(lab: LabTarget | undefined, step: Step): Promise<void> {
  const { state, ctx } = requireLab(lab);
  const b = step.desired!.body as unknown as WorkloadBody;
  const fields = new Set(step.changes.map((c) => c.field));
  if (fields.has('security_groups')) await setGroups(ctx.api, readWorkload(state.name, b.name)!.vmiUuid!, b.security_groups);
  if (fields.has('command') || fields.has('running')) await setWorkloadCommand(state.name, b.name, b.command);
}

export async function deleteWorkload(lab: LabTarget | undefined, a: ActualObject): Promise<void> {
  const { state, ctx } = requireLab(lab);
  const name = a.fq[0]!;
  if (!readWorkload(state.name, name)) {
    throw new CliError(`lab '${state.name}' has no record of workload ${name} (virtual-machine ${a.uuid}); 'cirrus netns detach ${name}' with its host's agent removes it`);
  }
  await delWorkload(ctx, state.name, name);
}

/**
 * Host, network and address are the namespace's plumbing: the workload is made anew. The
 * floating IPs pointing at its port keep pointing at the new one.
 */
export async function replaceWorkload(lab: LabTarget | undefined, step: Step, topology: string): Promise<string> {
  const { state, ctx } = requireLab(lab);
  const api = ctx.api;
  const old = readWorkload(state.name, step.fq[0]!);
  const port = await readPort(api, old?.vmiUuid);
  const fips = list(port?.['floating_ip_back_refs']).map((r) => r['uuid'] as string);
  const fipRef = (fip: string, portUuid: string, operation: 'ADD' | 'DELETE') =>
    api.post('/ref-update', { type: 'floating-ip', uuid: fip, 'ref-type': 'virtual-machine-interface', 'ref-uuid': portUuid, operation });
  for (const fip of fips) await fipRef(fip, port!['uuid'] as string, 'DELETE');
  if (old) await deleteWorkload(lab, step.actual!);
  const made = await createWorkload(lab, step.desired!, topology);
  const now = readWorkload(state.name, step.fq[0]!)!;
  for (const fip of fips) await fipRef(fip, now.vmiUuid!, 'ADD');
  return made;
}
