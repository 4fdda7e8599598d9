// Name resolution for CLI arguments: NAME (in the current project), DOMAIN:PROJECT:NAME, or a uuid.

import { type ApiClient, CliError } from './client.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `admin` → ["default-domain","admin"]; `dom:proj` → ["dom","proj"]. */
export function projectFqName(project: string): string[] {
  const parts = project.split(':');
  if (parts.length === 1) return ['default-domain', parts[0]!];
  if (parts.length === 2) return parts;
  throw new CliError(`--project: '${project}' is not PROJECT or DOMAIN:PROJECT`);
}

/** A project-owned object's fq_name from NAME or DOMAIN:PROJECT:NAME. */
export function ownedFqName(name: string, project: string): string[] {
  return name.includes(':') ? name.split(':') : [...projectFqName(project), name];
}

export async function resolve(api: ApiClient, type: string, ref: string, project: string): Promise<{ uuid: string; fq_name: string[] }> {
  if (UUID.test(ref)) {
    const r = await api.post<{ fq_name: string[]; type: string }>('/id-to-fqname', { uuid: ref });
    if (r.type !== type) throw new CliError(`${ref} is a ${r.type}, not a ${type}`);
    return { uuid: ref.toLowerCase(), fq_name: r.fq_name };
  }
  const fq = ownedFqName(ref, project);
  const uuid = await api.uuidOf(type, fq);
  if (!uuid) throw new CliError(`${type} ${fq.join(':')} does not exist`);
  return { uuid, fq_name: fq };
}
