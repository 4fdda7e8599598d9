// Objects as TF's API shows them: href, name, parent links, refs and back-refs as
// {to, uuid, href, attr}, children as {to, uuid, href}.

import { backRefField, childrenField } from '../model/types.js';
import type { StoredObject } from '../config/object.js';
import type { Cached, ConfigView } from '../config/view.js';

type Json = Record<string, unknown>;

export interface RenderOptions {
  /** Extra fields (back-refs, children) requested with `fields=`; undefined = everything. */
  fields?: ReadonlySet<string>;
  backRefs: boolean;
  children: boolean;
}

const PERMISSIONS = { owner: 'cloud-admin', owner_access: 7, other_access: 7, group: 'cloud-admin-group', group_access: 7 };
const PERMS2 = { owner: 'cloud-admin', owner_access: 7, global_access: 0, share: [] };

export const hrefOf = (base: string, type: string, uuid: string): string => `${base}/${type}/${uuid}`;

export function renderObject(view: ConfigView, obj: StoredObject, base: string, opts: RenderOptions): Json {
  const out: Json = {
    uuid: obj.uuid,
    fq_name: obj.fq_name,
    name: obj.fq_name[obj.fq_name.length - 1],
    href: hrefOf(base, obj.type, obj.uuid),
  };
  if (obj.parent_type) {
    out['parent_type'] = obj.parent_type;
    out['parent_uuid'] = obj.parent_uuid;
    out['parent_href'] = hrefOf(base, obj.parent_type, obj.parent_uuid!);
  }
  for (const [k, v] of Object.entries(obj.props)) out[k] = v;
  out['id_perms'] = { creator: null, description: null, ...(obj.props['id_perms'] as Json), permissions: PERMISSIONS };
  out['perms2'] ??= PERMS2;
  for (const [field, refs] of Object.entries(obj.refs)) {
    out[field] = refs.map((r) => linkTo(view, base, r.uuid, r.attr));
  }
  const wants = (field: string, flag: boolean) => (opts.fields ? opts.fields.has(field) : flag);
  for (const { from, field } of view.referrers(obj.uuid)) {
    const name = backRefField(from.obj.type);
    if (!wants(name, opts.backRefs)) continue;
    const attr = from.obj.refs[field]!.find((r) => r.uuid === obj.uuid)?.attr ?? null;
    ((out[name] ??= []) as Json[]).push(linkTo(view, base, from.obj.uuid, attr));
  }
  for (const child of view.childrenOf(obj.uuid)) {
    const name = childrenField(child.obj.type);
    if (!wants(name, opts.children)) continue;
    ((out[name] ??= []) as Json[]).push({ to: child.obj.fq_name, uuid: child.obj.uuid, href: hrefOf(base, child.obj.type, child.obj.uuid) });
  }
  return out;
}

function linkTo(view: ConfigView, base: string, uuid: string, attr: unknown): Json {
  const target = view.get(uuid)!.obj;
  return { to: target.fq_name, uuid, href: hrefOf(base, target.type, uuid), attr: attr ?? null };
}

/** A plain list entry, plus the requested fields. */
export function renderListEntry(view: ConfigView, c: Cached, base: string, fields: ReadonlySet<string> | undefined): Json {
  const entry: Json = { href: hrefOf(base, c.obj.type, c.obj.uuid), fq_name: c.obj.fq_name, uuid: c.obj.uuid };
  if (!fields?.size) return entry;
  const full = renderObject(view, c.obj, base, { fields, backRefs: false, children: false });
  for (const f of fields) if (full[f] !== undefined) entry[f] = full[f];
  return entry;
}
