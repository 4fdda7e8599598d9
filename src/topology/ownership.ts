// What a topology file created carries the annotation `cirrus.topology = NAME` (TF's
// `annotations` key-value map, set in the same request that creates the object): apply
// updates and deletes only objects with its own mark, and never adopts unmarked ones.

type Json = Record<string, unknown>;

export const OWNER_KEY = 'cirrus.topology';

export interface KeyValue {
  key: string;
  value: string;
}

export const ownerMark = (topology: string): KeyValue => ({ key: OWNER_KEY, value: topology });

/** The topology that created `obj`, if any. */
export function ownerOf(obj: Json): string | undefined {
  const pairs = ((obj['annotations'] as Json | undefined)?.['key_value_pair'] ?? []) as Json[];
  const v = pairs.find((p) => p['key'] === OWNER_KEY)?.['value'];
  return typeof v === 'string' ? v : undefined;
}
