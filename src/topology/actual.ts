// What the API holds for a topology: every object carrying its mark, and whatever sits
// where the file wants an object (to update it, or to refuse it when it is not ours).
// Also checks, before anything is made, that the objects the file names without
// declaring them exist.

import type { ApiClient } from '../cli/client.js';
import type { DesiredState } from './desired.js';
import type { LoadedTopology } from './load.js';
import { type ActualObject, KINDS, keyOf } from './model.js';
import { ownerOf } from './ownership.js';
import { API_KINDS, type ApiKind, specOf } from './resources.js';
import { type LabTarget, readWorkloads } from './workloads.js';

type Json = Record<string, unknown>;

export async function readActual(api: ApiClient, topology: string, desired: DesiredState, lab: LabTarget | undefined): Promise<ActualObject[]> {
  const wanted = new Set(desired.objects.map(keyOf));
  const workloads = new Set(desired.objects.filter((d) => d.kind === 'workload').map((d) => d.fq[0]!));
  const perKind = await Promise.all(
    KINDS.map(async (kind): Promise<ActualObject[]> => {
      if (kind === 'workload') return readWorkloads(api, lab, topology, workloads);
      const raws: Json[] = await api.listDetail(API_KINDS[kind].type);
      return raws
        .map((raw) => ({ kind, fq: raw['fq_name'] as string[], uuid: raw['uuid'] as string, owner: ownerOf(raw), raw, spec: {} }))
        .filter((a) => a.owner === topology || wanted.has(keyOf(a)))
        .map((a) => ({ ...a, spec: specOf(kind as ApiKind, a.raw) }));
    }),
  );
  return perKind.flat();
}

/** Fails, pointing into the file, on a name that is neither declared there nor in the API, or that only this topology made. */
export async function checkExternalRefs(api: ApiClient, loaded: LoadedTopology, desired: DesiredState, actual: ActualObject[]): Promise<void> {
  for (const ref of desired.external) {
    const name = ref.fq.join(':');
    const ours = actual.find((a) => a.owner === loaded.name && (a.kind as string) === ref.type && a.fq.join(':') === name);
    if (ours) loaded.fail(ref.at, `${ref.type} ${name} was made by this topology and is no longer declared in the file (declare it again, or stop naming it)`);
    if (!(await api.uuidOf(ref.type, ref.fq))) loaded.fail(ref.at, `${ref.type} ${name} is neither declared in the file nor present in the API`);
  }
}
