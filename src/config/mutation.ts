// One attempt at a write: the keys it puts and deletes, and the compares that make it
// safe against concurrent writers (optimistic concurrency, as an etcd transaction).

import type { Compare, Txn } from '../store/store.js';
import { type IdSpace, Keys, type StoredObject } from './object.js';
import type { Cached, ConfigView } from './view.js';

export class Mutation {
  private readonly compares = new Map<string, number>();
  private readonly puts = new Map<string, string>();
  private readonly deletes = new Set<string>();
  /** Objects written in this mutation, so that later steps of it see them. */
  readonly written = new Map<string, StoredObject>();

  constructor(readonly view: ConfigView) {}

  /** The key must still be at `modRev` (0: absent) when the mutation commits. */
  guard(key: string, modRev: number): void {
    if (!this.compares.has(key)) this.compares.set(key, modRev);
  }

  /** The object must still exist unchanged (used for referenced objects). */
  guardObject(c: Cached): void {
    this.guard(Keys.object(c.obj.type, c.obj.uuid), c.modRev);
  }

  putObject(obj: StoredObject, prev?: Cached): void {
    const key = Keys.object(obj.type, obj.uuid);
    this.guard(key, prev?.modRev ?? 0);
    if (!prev) {
      const name = Keys.name(obj.type, obj.fq_name);
      this.guard(name, 0);
      this.puts.set(name, obj.uuid);
    }
    this.puts.set(key, JSON.stringify(obj));
    this.written.set(obj.uuid, obj);
  }

  deleteObject(c: Cached): void {
    this.guardObject(c);
    this.deletes.add(Keys.object(c.obj.type, c.obj.uuid));
    this.deletes.add(Keys.name(c.obj.type, c.obj.fq_name));
  }

  isIpTaken(network: string, address: string): boolean {
    const key = Keys.ip(network, address);
    if (this.puts.has(key)) return true;
    if (this.deletes.has(key)) return false;
    return this.view.ipsOf(network).has(address);
  }

  claimIp(network: string, address: string, owner: string): void {
    const key = Keys.ip(network, address);
    this.guard(key, this.deletes.has(key) ? this.view.ipsOf(network).get(address)!.modRev : 0);
    this.deletes.delete(key);
    this.puts.set(key, owner);
  }

  releaseIp(network: string, address: string): void {
    const taken = this.view.ipsOf(network).get(address);
    const key = Keys.ip(network, address);
    this.puts.delete(key);
    if (taken) {
      this.guard(key, taken.modRev);
      this.deletes.add(key);
    }
  }

  isIdTaken(space: IdSpace, n: number): boolean {
    return this.puts.has(Keys.id(space, n)) || this.view.idsOf(space).has(n);
  }

  claimId(space: IdSpace, n: number, owner: string): void {
    const key = Keys.id(space, n);
    this.guard(key, 0);
    this.puts.set(key, owner);
  }

  releaseId(space: IdSpace, n: number): void {
    const taken = this.view.idsOf(space).get(n);
    if (!taken) return;
    const key = Keys.id(space, n);
    this.guard(key, taken.modRev);
    this.deletes.add(key);
  }

  /** Smallest free number ≥ `from` in an id space. */
  nextFreeId(space: IdSpace, from: number): number {
    let n = from;
    while (this.isIdTaken(space, n)) n++;
    return n;
  }

  putKv(key: string, value: string): void {
    this.puts.set(Keys.kv(key), value);
  }

  deleteKv(key: string): void {
    this.deletes.add(Keys.kv(key));
  }

  /** Type of an object as seen by this mutation (written here or in the view). */
  lookup(uuid: string): StoredObject | undefined {
    return this.written.get(uuid) ?? this.view.get(uuid)?.obj;
  }

  isEmpty(): boolean {
    return this.puts.size === 0 && this.deletes.size === 0;
  }

  txn(): Txn {
    const compares: Compare[] = [...this.compares].map(([key, modRev]) => ({ key, modRev }));
    return {
      compares,
      puts: [...this.puts].map(([key, value]) => ({ key, value })),
      deletes: [...this.deletes],
    };
  }
}
