// The in-memory view of the configuration store: objects and the indexes the API needs
// (names, children, back-references, taken addresses and ids). It changes only by
// applying the store's change feed, so it is exactly the store at `rev`.

import type { TypeName } from '../model/types.js';
import type { Change, KeyValue } from '../store/store.js';
import { type IdSpace, Keys, type StoredObject } from './object.js';

export interface Cached {
  obj: StoredObject;
  createRev: number;
  modRev: number;
}

export interface Taken {
  owner: string;
  modRev: number;
}

export class ConfigView {
  rev = 0;
  readonly objects = new Map<string, Cached>();
  private readonly byType = new Map<TypeName, Map<string, Cached>>();
  private readonly names = new Map<string, string>();
  /** target uuid → (referring uuid → ref field). */
  private readonly backRefs = new Map<string, Map<string, string>>();
  private readonly children = new Map<string, Set<string>>();
  /** network uuid → address → owner. */
  private readonly ips = new Map<string, Map<string, Taken>>();
  private readonly ids = new Map<IdSpace, Map<number, Taken>>();
  readonly kv = new Map<string, string>();

  load(kvs: KeyValue[], rev: number): void {
    // Objects in creation order, so that listings keep it across restarts.
    const sorted = [...kvs].sort((a, b) => a.createRev - b.createRev);
    for (const kv of sorted) this.put(kv.key, kv.value, kv.modRev, kv.createRev);
    this.rev = rev;
  }

  /**
   * Applies the change feed. A change may carry the key's `createRev`: a store restoring
   * keys after a failed commit gives it, so a restored object keeps its creation revision.
   */
  apply(changes: readonly Change[]): void {
    for (const c of changes) {
      if (c.value === undefined) this.remove(c.key);
      else this.put(c.key, c.value, c.rev, c.createRev);
      if (c.rev > this.rev) this.rev = c.rev;
    }
  }

  get(uuid: string): Cached | undefined {
    return this.objects.get(uuid);
  }

  ofType(type: TypeName): Iterable<Cached> {
    return this.byType.get(type)?.values() ?? [];
  }

  countOfType(type: TypeName): number {
    return this.byType.get(type)?.size ?? 0;
  }

  uuidByName(type: TypeName, fqName: string[]): string | undefined {
    return this.names.get(Keys.name(type, fqName));
  }

  childrenOf(uuid: string): Cached[] {
    return [...(this.children.get(uuid) ?? [])].map((u) => this.objects.get(u)!);
  }

  /** Objects referring to `uuid`, with the field they refer through. */
  referrers(uuid: string): { from: Cached; field: string }[] {
    return [...(this.backRefs.get(uuid) ?? [])].map(([u, field]) => ({ from: this.objects.get(u)!, field }));
  }

  ipsOf(network: string): ReadonlyMap<string, Taken> {
    return this.ips.get(network) ?? new Map();
  }

  idsOf(space: IdSpace): ReadonlyMap<number, Taken> {
    return this.ids.get(space) ?? new Map();
  }

  private put(key: string, value: string, modRev: number, createRev?: number): void {
    if (key.startsWith(Keys.objectPrefix)) this.putObject(JSON.parse(value) as StoredObject, modRev, createRev);
    else if (key.startsWith('n/')) this.names.set(key, value);
    else if (key.startsWith(Keys.ipPrefix)) {
      const [network, address] = splitTail(key, Keys.ipPrefix);
      mapOf(this.ips, network).set(address, { owner: value, modRev });
    } else if (key.startsWith(Keys.idPrefix)) {
      const [space, n] = splitTail(key, Keys.idPrefix);
      mapOf(this.ids, space as IdSpace).set(Number(n), { owner: value, modRev });
    } else if (key.startsWith(Keys.kvPrefix)) this.kv.set(key.slice(Keys.kvPrefix.length), value);
  }

  private remove(key: string): void {
    if (key.startsWith(Keys.objectPrefix)) this.removeObject(key.slice(key.lastIndexOf('/') + 1));
    else if (key.startsWith('n/')) this.names.delete(key);
    else if (key.startsWith(Keys.ipPrefix)) {
      const [network, address] = splitTail(key, Keys.ipPrefix);
      this.ips.get(network)?.delete(address);
      if (this.ips.get(network)?.size === 0) this.ips.delete(network);
    } else if (key.startsWith(Keys.idPrefix)) {
      const [space, n] = splitTail(key, Keys.idPrefix);
      this.ids.get(space as IdSpace)?.delete(Number(n));
    } else if (key.startsWith(Keys.kvPrefix)) this.kv.delete(key.slice(Keys.kvPrefix.length));
  }

  private putObject(obj: StoredObject, modRev: number, createRev?: number): void {
    const old = this.objects.get(obj.uuid);
    if (old) this.unindexRefs(old.obj);
    const cached: Cached = { obj, modRev, createRev: createRev ?? old?.createRev ?? modRev };
    this.objects.set(obj.uuid, cached);
    mapOf(this.byType, obj.type).set(obj.uuid, cached);
    if (obj.parent_uuid) setOf(this.children, obj.parent_uuid).add(obj.uuid);
    for (const [field, refs] of Object.entries(obj.refs)) {
      for (const r of refs) mapOf(this.backRefs, r.uuid).set(obj.uuid, field);
    }
  }

  private removeObject(uuid: string): void {
    const old = this.objects.get(uuid);
    if (!old) return;
    this.unindexRefs(old.obj);
    this.objects.delete(uuid);
    this.byType.get(old.obj.type)?.delete(uuid);
    if (old.obj.parent_uuid) this.children.get(old.obj.parent_uuid)?.delete(uuid);
  }

  private unindexRefs(obj: StoredObject): void {
    for (const refs of Object.values(obj.refs)) {
      for (const r of refs) {
        const m = this.backRefs.get(r.uuid);
        m?.delete(obj.uuid);
        if (m?.size === 0) this.backRefs.delete(r.uuid);
      }
    }
  }
}

function splitTail(key: string, prefix: string): [string, string] {
  const rest = key.slice(prefix.length);
  const slash = rest.indexOf('/');
  return [rest.slice(0, slash), rest.slice(slash + 1)];
}

function mapOf<K, K2, V>(m: Map<K, Map<K2, V>>, k: K): Map<K2, V> {
  let inner = m.get(k);
  if (!inner) m.set(k, (inner = new Map()));
  return inner;
}

function setOf<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let inner = m.get(k);
  if (!inner) m.set(k, (inner = new Set()));
  return inner;
}
