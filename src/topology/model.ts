// The objects a topology manages, as the planner sees them: what the file wants
// (desired.ts) and what the API holds (actual.ts), each reduced to a comparable `spec`.

import type { SpecPath } from './load.js';

type Json = Record<string, unknown>;

/**
 * In dependency order: an object only refers to kinds before its own, so creating and
 * updating in this order, and deleting in the reverse one, never trips over a reference.
 */
export const KINDS = ['project', 'network-ipam', 'network-policy', 'security-group', 'virtual-network', 'floating-ip-pool', 'workload', 'floating-ip'] as const;
export type Kind = (typeof KINDS)[number];

/** Kinds that hold others: used where they exist (without being marked), created and marked where they do not. */
export const CONTAINERS: ReadonlySet<Kind> = new Set(['project', 'network-ipam', 'floating-ip-pool']);

/** How the plan names them. */
export const LABELS: Record<Kind, string> = {
  project: 'project',
  'network-ipam': 'ipam',
  'network-policy': 'policy',
  'security-group': 'security-group',
  'virtual-network': 'network',
  'floating-ip-pool': 'pool',
  workload: 'workload',
  'floating-ip': 'floating-ip',
};

/** Fields whose change needs the object made anew (the API keeps them, or the lab cannot move it). */
export const IMMUTABLE: Partial<Record<Kind, string[]>> = {
  'floating-ip': ['address'],
  workload: ['host', 'network', 'address', 'attached'],
};

export interface DesiredObject {
  kind: Kind;
  /** The API's fq_name (a workload: its virtual-machine's, the namespace name). */
  fq: string[];
  /**
   * What the planner compares with the API's version: a field left undefined is not
   * managed (the server's choice stands), a defined one must match.
   */
  spec: Json;
  /** Properties and references to send on create and update (without fq_name and the mark). */
  body: Json;
  /** Where the file declares it. */
  at: SpecPath;
}

export interface ActualObject {
  kind: Kind;
  fq: string[];
  uuid: string;
  /** The topology that created it (ownership.ts), if any. */
  owner: string | undefined;
  spec: Json;
  /** The object as the API returned it. */
  raw: Json;
}

export const keyOf = (o: { kind: Kind; fq: string[] }): string => `${o.kind} ${o.fq.join(':')}`;

/** A reference to an object the file does not declare: it must exist before apply starts. */
export interface ExternalRef {
  type: 'virtual-network' | 'network-policy' | 'security-group' | 'virtual-machine-interface';
  fq: string[];
  at: SpecPath;
}
