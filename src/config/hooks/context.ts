// What type-specific logic (IPAM, MACs, ids, default objects) gets to work with.

import type { Allocator } from '../../ipam/allocator.js';
import type { TypeName } from '../../model/types.js';
import type { Mutation } from '../mutation.js';
import type { StoredObject } from '../object.js';
import type { Cached, ConfigView } from '../view.js';

export interface HookContext {
  m: Mutation;
  view: ConfigView;
  allocator: Allocator;
  /** Creates another object inside the same mutation (e.g. a project's default security group). */
  createInside(type: TypeName, body: Record<string, unknown>): StoredObject;
}

export interface TypeHooks {
  /** Validates and completes an object being created (`old` undefined) or updated. */
  prepare?(ctx: HookContext, obj: StoredObject, old?: StoredObject): void;
  /** Runs after the object is written on create. */
  afterCreate?(ctx: HookContext, obj: StoredObject): void;
  /** Children deleted together with the object (when nothing else blocks them). */
  ownedChildren?(ctx: HookContext, obj: StoredObject): Cached[];
  /** Releases what the object holds (addresses, ids) when it is deleted. */
  release?(ctx: HookContext, obj: StoredObject): void;
}

/** The single referenced uuid in `field`, if any. */
export function singleRef(obj: StoredObject, field: string): string | undefined {
  return obj.refs[field]?.[0]?.uuid;
}
