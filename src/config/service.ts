// The configuration service: TF's resource semantics (hierarchy, names, references,
// IPAM, ids) over the store. Reads come from the in-memory view; every write is a
// Mutation committed as one store transaction, retried when a concurrent writer won.

import { randomUUID } from 'node:crypto';
import { Allocator } from '../ipam/allocator.js';
import { subnetsOf } from '../ipam/subnets.js';
import { formatCidr, parseCidr, parseIpv4 } from '../util/ipv4.js';
import { validateBody } from '../model/validate.js';
import { COMMON_PROPERTIES, MAP_PROPERTIES, type ParentName, type TypeDef, type TypeName, isTypeName, typeDef } from '../model/types.js';
import type { Store } from '../store/store.js';
import { ApiError, BadRequest, Conflict, NotFound } from './errors.js';
import type { HookContext } from './hooks/context.js';
import { HOOKS } from './hooks/index.js';
import { Mutation } from './mutation.js';
import { IP_ALLOC_OWNER, type StoredObject, type StoredRef } from './object.js';
import { type Cached, ConfigView } from './view.js';

type Json = Record<string, unknown>;

/** A delete refused because other objects depend on the target (TF's 409 wording). */
export class DeleteBlocked extends Conflict {
  constructor(
    readonly kind: 'refs' | 'children',
    readonly blockers: { type: TypeName; uuid: string }[],
  ) {
    super(
      `${kind === 'refs' ? 'Delete when resource still referred' : 'Delete when children still present'}: ` +
        blockers.map((b) => `${b.type}/${b.uuid}`).join(', '),
    );
  }
}

export interface ListQuery {
  parentUuids?: string[];
  backRefUuids?: string[];
  uuids?: string[];
  fqNames?: string[][];
  filters?: [string, unknown][];
  shared?: boolean;
  pageLimit?: number;
  pageMarker?: string;
}

export interface RefUpdate {
  type: string;
  uuid: string;
  refType: string;
  refUuid?: string;
  refFqName?: string[];
  operation: 'ADD' | 'DELETE';
  attr?: unknown;
}

/** Defaults TF's clients assume exist (REFERENCE.md §1). */
const DEFAULTS: { type: TypeName; fq_name: string[]; parent_type?: TypeName }[] = [
  { type: 'global-system-config', fq_name: ['default-global-system-config'] },
  { type: 'domain', fq_name: ['default-domain'] },
  { type: 'project', fq_name: ['default-domain', 'default-project'], parent_type: 'domain' },
  { type: 'network-ipam', fq_name: ['default-domain', 'default-project', 'default-network-ipam'], parent_type: 'project' },
  { type: 'project', fq_name: ['default-domain', 'admin'], parent_type: 'domain' },
  { type: 'network-ipam', fq_name: ['default-domain', 'admin', 'default-network-ipam'], parent_type: 'project' },
];

/** Default parent for creates that give only a name, as vnc_api does. */
const DEFAULT_PARENT: Partial<Record<ParentName, string[]>> = {
  domain: ['default-domain'],
  project: ['default-domain', 'default-project'],
  'global-system-config': ['default-global-system-config'],
};

const MAX_ATTEMPTS = 8;

export class ConfigService {
  private readonly allocator = new Allocator();
  private readonly listeners = new Set<() => void>();
  private stopWatch: (() => void) | undefined;

  private constructor(
    readonly store: Store,
    readonly view: ConfigView,
  ) {}

  /** Loads the view from the store, follows its change feed, and creates the defaults. */
  static async open(store: Store): Promise<ConfigService> {
    const view = new ConfigView();
    const { kvs, rev } = await store.range('');
    view.load(kvs, rev);
    const svc = new ConfigService(store, view);
    svc.stopWatch = await store.watch(rev, (changes) => {
      view.apply(changes);
      for (const l of svc.listeners) l();
    });
    await svc.ensureDefaults();
    return svc;
  }

  close(): void {
    this.stopWatch?.();
    for (const l of this.listeners) l();
    this.listeners.clear();
  }

  /** Calls `listener` after every change applied to the view (and once on close). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async ensureDefaults(): Promise<void> {
    for (const d of DEFAULTS) {
      if (this.view.uuidByName(d.type, d.fq_name)) continue;
      await this.create(d.type, { fq_name: d.fq_name, ...(d.parent_type ? { parent_type: d.parent_type } : {}) });
    }
  }

  // ---- reads -------------------------------------------------------------------------

  /** The object `uuid` of type `type`; 404 otherwise. */
  get(type: TypeName, uuid: string): Cached {
    const c = this.view.get(uuid);
    if (!c || c.obj.type !== type) throw new NotFound(`No ${type} object found for id ${uuid}`);
    return c;
  }

  fqNameToId(type: string, fqName: string[]): string {
    const uuid = isTypeName(type) ? this.view.uuidByName(type, fqName) : undefined;
    if (!uuid) throw new NotFound(`Name ${pyList(fqName)} not found`);
    return uuid;
  }

  idToFqName(uuid: string): { fq_name: string[]; type: TypeName } {
    const c = this.view.get(uuid);
    if (!c) throw new NotFound(`UUID ${uuid} not found`);
    return { fq_name: c.obj.fq_name, type: c.obj.type };
  }

  list(type: TypeName, q: ListQuery): { items: Cached[]; marker?: string } {
    let items = [...this.view.ofType(type)];
    if (q.uuids) {
      const wanted = new Set(q.uuids);
      items = items.filter((c) => wanted.has(c.obj.uuid));
    }
    if (q.parentUuids) {
      const parents = new Set(q.parentUuids);
      items = items.filter((c) => parents.has(c.obj.parent_uuid ?? '') || (q.shared && c.obj.props['is_shared'] === true));
    }
    if (q.backRefUuids) {
      const targets = new Set(q.backRefUuids);
      items = items.filter((c) => Object.values(c.obj.refs).some((refs) => refs.some((r) => targets.has(r.uuid))));
    }
    if (q.fqNames) {
      const names = new Set(q.fqNames.map((f) => JSON.stringify(f)));
      items = items.filter((c) => names.has(JSON.stringify(c.obj.fq_name)));
    }
    for (const [field, value] of q.filters ?? []) {
      const expected = JSON.stringify(value);
      items = items.filter((c) => JSON.stringify(fieldValue(c.obj, field)) === expected);
    }
    if (q.pageMarker !== undefined) {
      const after = this.markerRev(q.pageMarker);
      items = items.filter((c) => c.createRev > after);
    }
    if (q.pageLimit !== undefined && items.length > q.pageLimit) {
      items = items.slice(0, q.pageLimit);
      return { items, marker: String(items[items.length - 1]!.createRev) };
    }
    return { items };
  }

  private markerRev(marker: string): number {
    if (/^\d+$/.test(marker)) return Number(marker);
    const c = this.view.get(marker);
    if (!c) throw new BadRequest(`page_marker: '${marker}' is neither a marker returned by a previous page nor a known uuid`, 'page_marker');
    return c.createRev;
  }

  // ---- writes ------------------------------------------------------------------------

  async create(type: TypeName, body: unknown): Promise<StoredObject> {
    validateBody(type, body);
    return this.mutate((ctx) => this.createIn(ctx, type, body));
  }

  async update(type: TypeName, uuid: string, body: unknown): Promise<StoredObject> {
    validateBody(type, body);
    return this.mutate((ctx) => {
      const old = this.get(type, uuid);
      const def = typeDef(type);
      if (body['uuid'] !== undefined && body['uuid'] !== uuid) throw new BadRequest(`${type}.uuid: does not match the uuid in the URL`, `${type}.uuid`);
      if (body['fq_name'] !== undefined && JSON.stringify(body['fq_name']) !== JSON.stringify(old.obj.fq_name)) {
        throw new BadRequest(`${type}.fq_name: cannot be changed`, `${type}.fq_name`);
      }
      if (body['parent_type'] !== undefined && body['parent_type'] !== (old.obj.parent_type ?? 'config-root')) {
        throw new BadRequest(`${type}.parent_type: cannot be changed`, `${type}.parent_type`);
      }
      const obj: StoredObject = structuredClone(old.obj);
      this.assignProps(def, obj, body, old.obj);
      for (const r of def.refs) {
        if (body[r.field] !== undefined) obj.refs[r.field] = this.resolveRefs(ctx, def, r.field, body[r.field] as Json[]);
        if (obj.refs[r.field]?.length === 0) delete obj.refs[r.field];
      }
      HOOKS[type]?.prepare?.(ctx, obj, old.obj);
      ctx.m.putObject(obj, old);
      return obj;
    });
  }

  async delete(type: TypeName, uuid: string): Promise<void> {
    await this.mutate((ctx) => {
      const c = this.get(type, uuid);
      this.deleteIn(ctx, c);
    });
  }

  async refUpdate(u: RefUpdate): Promise<string> {
    if (!isTypeName(u.type)) throw new BadRequest(`type: '${u.type}' is not a type Cirrus serves`, 'type');
    const def = typeDef(u.type);
    const refDef = def.refs.find((r) => r.target === u.refType);
    if (!refDef) throw new BadRequest(`ref-type: ${u.type} has no reference to '${u.refType}'`, 'ref-type');
    return this.mutate((ctx) => {
      const old = this.get(u.type as TypeName, u.uuid);
      const target = this.resolveTarget(refDef.target, u.refUuid, u.refFqName);
      if (!target) {
        const what = u.refUuid ?? (u.refFqName ? u.refFqName.join(':') : undefined);
        if (what === undefined) throw new BadRequest('ref-uuid or ref-fq-name is required', 'ref-uuid');
        throw new NotFound(`${refDef.target} ${what} not found`);
      }
      const obj: StoredObject = structuredClone(old.obj);
      const current = (obj.refs[refDef.field] ?? []).filter((r) => r.uuid !== target.obj.uuid);
      if (u.operation === 'ADD') {
        const attr = u.attr ?? null;
        if (attr !== null) validateBody(def.name, { [refDef.field]: [{ uuid: target.obj.uuid, attr }] });
        current.push({ uuid: target.obj.uuid, attr });
        ctx.m.guardObject(target);
      }
      if (current.length) obj.refs[refDef.field] = current;
      else delete obj.refs[refDef.field];
      HOOKS[def.name]?.prepare?.(ctx, obj, old.obj);
      ctx.m.putObject(obj, old);
      return obj.uuid;
    });
  }

  /** TF's ref-relax-for-delete: the link from `uuid` to `refUuid` no longer blocks deleting the target. */
  async refRelaxForDelete(uuid: string, refUuid: string): Promise<string> {
    return this.mutate((ctx) => {
      const c = this.view.get(uuid);
      if (!c) throw new NotFound(`UUID ${uuid} not found`);
      const obj: StoredObject = structuredClone(c.obj);
      const link = Object.values(obj.refs).flat().find((r) => r.uuid === refUuid);
      if (!link) throw new NotFound(`${c.obj.type} ${uuid} has no reference to ${refUuid}`);
      if (link.relaxed) return uuid;
      link.relaxed = true;
      ctx.m.putObject(obj, c);
      return uuid;
    });
  }

  // ---- TF's prop-collection-get/update, for map properties ----------------------------

  propCollectionGet(uuid: string, fields: string[], position?: string): Json {
    const c = this.view.get(uuid);
    if (!c) throw new NotFound(`UUID ${uuid} not found`);
    const out: Json = {};
    for (const field of fields) {
      const spec = this.mapProperty(c.obj.type, field);
      const items = (((c.obj.props[field] as Json | undefined)?.[spec.list] ?? []) as Json[]).filter((e) => position === undefined || e[spec.key] === position);
      out[field] = items.map((e) => [e, e[spec.key]]);
    }
    return out;
  }

  async propCollectionUpdate(uuid: string, updates: { field: string; operation: string; value?: unknown; position?: string }[]): Promise<void> {
    await this.mutate((ctx) => {
      const c = this.view.get(uuid);
      if (!c) throw new NotFound(`UUID ${uuid} not found`);
      const obj: StoredObject = structuredClone(c.obj);
      updates.forEach((u, i) => {
        const spec = this.mapProperty(obj.type, u.field);
        const items = (((obj.props[u.field] as Json | undefined)?.[spec.list] ?? []) as Json[]).slice();
        const at = `updates[${i}]`;
        if (u.operation === 'set') {
          const value = u.value as Json | undefined;
          if (typeof value?.[spec.key] !== 'string') throw new BadRequest(`${at}.value: an object with a string '${spec.key}' is required`, `${at}.value`);
          const k = value[spec.key];
          obj.props[u.field] = { [spec.list]: [...items.filter((e) => e[spec.key] !== k), value] };
        } else if (u.operation === 'delete') {
          if (u.position === undefined) throw new BadRequest(`${at}.position: the key to delete is required`, `${at}.position`);
          obj.props[u.field] = { [spec.list]: items.filter((e) => e[spec.key] !== u.position) };
        } else throw new BadRequest(`${at}.operation: '${u.operation}' is not set or delete (map properties)`, `${at}.operation`);
      });
      validateBody(obj.type, Object.fromEntries(updates.map((u) => [u.field, obj.props[u.field]])));
      ctx.m.putObject(obj, c);
    });
  }

  private mapProperty(type: TypeName, field: string): { list: string; key: string } {
    const spec = MAP_PROPERTIES[field];
    const def = typeDef(type);
    if (!spec || !(field in COMMON_PROPERTIES || field in def.properties)) {
      throw new BadRequest(`fields: '${field}' is not a collection property of ${type} (${Object.keys(MAP_PROPERTIES).filter((f) => f in COMMON_PROPERTIES || f in def.properties).join(', ')})`, 'fields');
    }
    return spec;
  }

  // ---- TF's useragent key-value store ------------------------------------------------

  async kvStore(key: string, value: string): Promise<void> {
    await this.mutate((ctx) => ctx.m.putKv(key, value));
  }

  async kvDelete(key: string): Promise<void> {
    await this.mutate((ctx) => ctx.m.deleteKv(key));
  }

  kvRetrieve(key: string | undefined): string | { key: string; value: string }[] {
    if (key === undefined) return [...this.view.kv].map(([k, value]) => ({ key: k, value }));
    const value = this.view.kv.get(key);
    if (value === undefined) throw new NotFound(`key ${key} not found`);
    return value;
  }

  // ---- network actions (TF's ip-alloc, ip-free, subnet-ip-count) ---------------------

  async ipAlloc(network: string, count: number, subnet?: string): Promise<string[]> {
    return this.mutate((ctx) => {
      const vn = this.get('virtual-network', network).obj;
      let subnets = subnetsOf(vn);
      if (subnet !== undefined) {
        subnets = subnets.filter((s) => formatCidr(s.cidr) === subnet);
        if (!subnets.length) throw new BadRequest(`subnet: ${subnet} is not a subnet of this network`, 'subnet');
      }
      const out: string[] = [];
      for (let i = 0; i < count; i++) {
        const address = subnets.map((s) => this.allocator.allocate(s, (a) => ctx.m.isIpTaken(network, a))).find((a) => a);
        if (!address) throw new Conflict(`no free address left for ${count} addresses in network ${vn.fq_name.join(':')}`);
        ctx.m.claimIp(network, address, IP_ALLOC_OWNER);
        out.push(address);
      }
      return out;
    });
  }

  async ipFree(network: string, addresses: string[]): Promise<void> {
    await this.mutate((ctx) => {
      this.get('virtual-network', network);
      for (const [i, a] of addresses.entries()) {
        const taken = this.view.ipsOf(network).get(a);
        if (taken && taken.owner !== IP_ALLOC_OWNER) {
          throw new Conflict(`ip_addr[${i}]: ${a} belongs to ${this.view.get(taken.owner)?.obj.type ?? 'an object'} ${taken.owner}; delete that instead`, `ip_addr[${i}]`);
        }
        ctx.m.releaseIp(network, a);
      }
    });
  }

  subnetIpCount(network: string, subnetList: string[]): number[] {
    this.get('virtual-network', network);
    const taken = [...this.view.ipsOf(network).keys()].map((a) => parseIpv4(a)!);
    return subnetList.map((text, i) => {
      const cidr = parseCidr(text);
      if (typeof cidr === 'string') throw new BadRequest(`subnet_list[${i}]: ${cidr}`, `subnet_list[${i}]`);
      const last = cidr.base + 2 ** (32 - cidr.prefixLen) - 1;
      return taken.filter((ip) => ip >= cidr.base && ip <= last).length;
    });
  }

  // ---- internals ---------------------------------------------------------------------

  private async mutate<T>(fn: (ctx: HookContext) => T): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const m = new Mutation(this.view);
      const ctx: HookContext = {
        m,
        view: this.view,
        allocator: this.allocator,
        createInside: (type, body) => {
          validateBody(type, body);
          return this.createIn(ctx, type, body);
        },
      };
      // Runs synchronously against the view: with the embedded store nothing can
      // interleave between the checks and the commit.
      const result = fn(ctx);
      if (m.isEmpty()) return result;
      const outcome = await this.store.commit(m.txn());
      if (outcome.ok) return result;
      if (attempt >= MAX_ATTEMPTS) throw new ApiError(503, `too much contention on ${outcome.failedKey}; retry`);
    }
  }

  private createIn(ctx: HookContext, type: TypeName, body: Json): StoredObject {
    const def = typeDef(type);
    const uuid = (body['uuid'] as string | undefined)?.toLowerCase() ?? randomUUID();
    if (ctx.m.lookup(uuid)) throw new Conflict(`${type}.uuid: ${uuid} already exists`, `${type}.uuid`);
    const placement = this.place(ctx, def, body, uuid);
    if (this.view.uuidByName(type, placement.fq_name) || [...ctx.m.written.values()].some((o) => o.type === type && sameName(o.fq_name, placement.fq_name))) {
      throw new Conflict(`${type}.fq_name: ${placement.fq_name.join(':')} already exists`, `${type}.fq_name`);
    }
    const now = timestamp();
    const obj: StoredObject = { type, uuid, ...placement, props: {}, refs: {} };
    this.assignProps(def, obj, body, undefined);
    obj.props['display_name'] ??= placement.fq_name[placement.fq_name.length - 1];
    obj.props['id_perms'] = { enable: true, user_visible: true, ...(obj.props['id_perms'] as Json | undefined), created: now, last_modified: now };
    for (const r of def.refs) {
      if (body[r.field] !== undefined) obj.refs[r.field] = this.resolveRefs(ctx, def, r.field, body[r.field] as Json[]);
      if (obj.refs[r.field]?.length === 0) delete obj.refs[r.field];
    }
    HOOKS[type]?.prepare?.(ctx, obj, undefined);
    ctx.m.putObject(obj);
    HOOKS[type]?.afterCreate?.(ctx, obj);
    return obj;
  }

  /** Resolves fq_name, parent_type and parent_uuid of a new object. */
  private place(ctx: HookContext, def: TypeDef, body: Json, uuid: string): Pick<StoredObject, 'fq_name' | 'parent_type' | 'parent_uuid'> {
    const type = def.name;
    const given = body['fq_name'] as string[] | undefined;
    const name = given?.[given.length - 1] ?? (body['name'] as string | undefined) ?? uuid;
    if (type !== 'route-target' && name.includes(':')) throw new BadRequest(`${type}.fq_name: '${name}' must not contain ':'`, `${type}.fq_name`);
    if (def.parents.includes('config-root')) {
      if (body['parent_type'] !== undefined && body['parent_type'] !== 'config-root') {
        throw new BadRequest(`${type}.parent_type: ${type} has no parent (got '${String(body['parent_type'])}')`, `${type}.parent_type`);
      }
      if (given && given.length !== 1) throw new BadRequest(`${type}.fq_name: a ${type} has a one-element fq_name`, `${type}.fq_name`);
      return { fq_name: [name] };
    }
    const parentType = body['parent_type'] as string | undefined;
    if (parentType !== undefined && !def.parents.includes(parentType as ParentName)) {
      throw new BadRequest(`${type}.parent_type: '${parentType}' is not a parent type of ${type} (${def.parents.join(', ')})`, `${type}.parent_type`);
    }
    const candidates = (parentType ? [parentType] : def.parents) as TypeName[];
    let parent: StoredObject | undefined;
    if (body['parent_uuid'] !== undefined) {
      parent = ctx.m.lookup(body['parent_uuid'] as string);
      if (!parent || !candidates.includes(parent.type)) throw new BadRequest(`${type}.parent_uuid: no ${candidates.join(' or ')} ${String(body['parent_uuid'])}`, `${type}.parent_uuid`);
    } else {
      const parentFq = given ? given.slice(0, -1) : DEFAULT_PARENT[candidates[0]!];
      if (!parentFq || parentFq.length === 0) throw new BadRequest(`${type}.fq_name: required (the parent cannot be guessed)`, `${type}.fq_name`);
      for (const t of candidates) {
        const u = this.view.uuidByName(t, parentFq) ?? [...ctx.m.written.values()].find((o) => o.type === t && sameName(o.fq_name, parentFq))?.uuid;
        if (u) {
          parent = ctx.m.lookup(u);
          break;
        }
      }
      if (!parent) throw new BadRequest(`${type}.fq_name: parent ${candidates.join(' or ')} ${parentFq.join(':')} does not exist`, `${type}.fq_name`);
    }
    const fqName = [...parent.fq_name, name];
    if (given && !sameName(given, fqName)) throw new BadRequest(`${type}.fq_name: ${given.join(':')} does not match parent ${parent.fq_name.join(':')}`, `${type}.fq_name`);
    const parentCached = this.view.get(parent.uuid);
    if (parentCached) ctx.m.guardObject(parentCached);
    return { fq_name: fqName, parent_type: parent.type, parent_uuid: parent.uuid };
  }

  private assignProps(def: TypeDef, obj: StoredObject, body: Json, old: StoredObject | undefined): void {
    for (const key of [...Object.keys(COMMON_PROPERTIES), ...Object.keys(def.properties)]) {
      if (body[key] === undefined) continue;
      if (def.serverOwned.includes(key)) {
        if (old && JSON.stringify(body[key]) !== JSON.stringify(old.props[key])) {
          throw new BadRequest(`${def.name}.${key}: assigned by the server and cannot be changed`, `${def.name}.${key}`);
        }
        continue;
      }
      if (key === 'id_perms') {
        const { enable, description, user_visible } = body[key] as Json;
        obj.props[key] = {
          ...(obj.props[key] as Json | undefined),
          ...(enable !== undefined ? { enable } : {}),
          ...(description !== undefined ? { description } : {}),
          ...(user_visible !== undefined ? { user_visible } : {}),
          ...(old ? { last_modified: timestamp() } : {}),
        };
        continue;
      }
      obj.props[key] = body[key];
    }
    if (old && body['id_perms'] === undefined) obj.props['id_perms'] = { ...(obj.props['id_perms'] as Json), last_modified: timestamp() };
  }

  private resolveRefs(ctx: HookContext, def: TypeDef, field: string, given: Json[]): StoredRef[] {
    const refDef = def.refs.find((r) => r.field === field)!;
    const seen = new Set<string>();
    return given.map((g, i) => {
      const at = `${def.name}.${field}[${i}]`;
      const target = this.resolveTarget(refDef.target, g['uuid'] as string | undefined, g['to'] as string[] | undefined);
      if (!target) {
        if (g['uuid'] === undefined && g['to'] === undefined) throw new BadRequest(`${at}: give uuid or to`, at);
        const what = (g['uuid'] as string | undefined) ?? (g['to'] as string[]).join(':');
        throw new BadRequest(`${at}: ${refDef.target} ${what} does not exist`, at);
      }
      if (seen.has(target.obj.uuid)) throw new BadRequest(`${at}: ${refDef.target} ${target.obj.uuid} is referenced twice`, at);
      seen.add(target.obj.uuid);
      ctx.m.guardObject(target);
      return { uuid: target.obj.uuid, attr: g['attr'] ?? null };
    });
  }

  private resolveTarget(type: TypeName, uuid?: string, fqName?: string[]): Cached | undefined {
    const u = uuid?.toLowerCase() ?? (fqName ? this.view.uuidByName(type, fqName) : undefined);
    const c = u ? this.view.get(u) : undefined;
    return c && c.obj.type === type ? c : undefined;
  }

  /** Removes a relaxed link from its referrer as its target goes away. */
  private dropLink(ctx: HookContext, from: Cached, field: string, target: string): void {
    const obj: StoredObject = structuredClone(ctx.m.written.get(from.obj.uuid) ?? from.obj);
    const rest = obj.refs[field]!.filter((l) => l.uuid !== target);
    if (rest.length) obj.refs[field] = rest;
    else delete obj.refs[field];
    ctx.m.putObject(obj, from);
  }

  private deleteIn(ctx: HookContext, c: Cached): void {
    const hooks = HOOKS[c.obj.type];
    const owned = hooks?.ownedChildren?.(ctx, c.obj) ?? [];
    const ownedIds = new Set(owned.map((o) => o.obj.uuid));
    const referrers = this.view.referrers(c.obj.uuid).filter((r) => !ownedIds.has(r.from.obj.uuid));
    const isRelaxed = (r: { from: Cached; field: string }) => r.from.obj.refs[r.field]!.find((l) => l.uuid === c.obj.uuid)?.relaxed === true;
    const blocking = referrers.filter((r) => !isRelaxed(r));
    if (blocking.length) throw new DeleteBlocked('refs', blocking.map((r) => ({ type: r.from.obj.type, uuid: r.from.obj.uuid })));
    const children = this.view.childrenOf(c.obj.uuid).filter((k) => !ownedIds.has(k.obj.uuid));
    if (children.length) throw new DeleteBlocked('children', children.map((k) => ({ type: k.obj.type, uuid: k.obj.uuid })));
    for (const r of referrers) this.dropLink(ctx, r.from, r.field, c.obj.uuid);
    for (const o of owned) this.deleteIn(ctx, o);
    hooks?.release?.(ctx, c.obj);
    ctx.m.deleteObject(c);
  }
}

function sameName(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function fieldValue(obj: StoredObject, field: string): unknown {
  switch (field) {
    case 'uuid':
      return obj.uuid;
    case 'fq_name':
      return obj.fq_name;
    case 'name':
      return obj.fq_name[obj.fq_name.length - 1];
    case 'parent_uuid':
      return obj.parent_uuid;
    default:
      return obj.props[field];
  }
}

function timestamp(): string {
  return new Date().toISOString().replace('Z', '');
}

/** Python's repr of a list of strings, as TF's messages print fq_names. */
export function pyList(items: string[]): string {
  return `[${items.map((s) => `'${s}'`).join(', ')}]`;
}
