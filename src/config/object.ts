// How a configuration object is kept in the store, and the key layout of the store.

import type { TypeName } from '../model/types.js';

export interface StoredRef {
  uuid: string;
  attr: unknown;
  /** Set by ref-relax-for-delete: the target may be deleted; the link then goes with it. */
  relaxed?: true;
}

export interface StoredObject {
  type: TypeName;
  uuid: string;
  fq_name: string[];
  parent_type?: TypeName;
  parent_uuid?: string;
  /** Every property, including display_name, id_perms and server-owned ones. */
  props: Record<string, unknown>;
  /** Links by field (`virtual_network_refs`), in the order they were given. */
  refs: Record<string, StoredRef[]>;
}

/** Key layout. Keys are plain ASCII; object keys sort by type, then uuid. */
export const Keys = {
  objectPrefix: 'o/',
  object: (type: TypeName, uuid: string) => `o/${type}/${uuid}`,
  /** fq_name → uuid; its existence makes the name unique. */
  name: (type: TypeName, fqName: string[]) => `n/${type}/${JSON.stringify(fqName)}`,
  /** An address taken in a network (instance-ip, floating-ip or an ip-alloc reservation). */
  ipPrefix: 'ip/',
  ip: (network: string, address: string) => `ip/${network}/${address}`,
  /** A number taken in an id space (network ids, VNIs, security group ids). */
  idPrefix: 'id/',
  id: (space: IdSpace, n: number) => `id/${space}/${n}`,
  /** TF's useragent key-value store. */
  kvPrefix: 'ua/',
  kv: (key: string) => `ua/${key}`,
} as const;

export type IdSpace = 'network' | 'vni' | 'security-group';

/** Owner recorded for an address reserved through the ip-alloc action. */
export const IP_ALLOC_OWNER = 'ip-alloc';
