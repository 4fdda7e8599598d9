// Reading a topology file: YAML (the `yaml` package keeps source positions), checked
// against the schema; every error names the file, the line and the path inside the file.

import fs from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { type Document, LineCounter, isMap, isSeq, parseDocument } from 'yaml';
import { CliError } from '../cli/client.js';
import { type Topology, TopologySchema } from './schema.js';

/** A place in the file's data: keys and list indexes. */
export type SpecPath = (string | number)[];

export class TopologyError extends CliError {}

export interface LoadedTopology {
  topology: Topology;
  /** The topology's name: `name:` in the file, else the file name without extension. */
  name: string;
  file: string;
  /** `FILE:LINE: PATH` of a place in the file. */
  where(at: SpecPath): string;
  /** Throws a TopologyError naming the file, the line of `at` and the path. */
  fail(at: SpecPath, message: string): never;
}

const ajv = new Ajv({ allErrors: false, strict: false, verbose: true });
const validate = ajv.compile(TopologySchema);

/** `networks[0].subnets[1]` */
export function formatPath(at: SpecPath): string {
  return at.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(top)';
}

export function loadTopology(file: string): LoadedTopology {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TopologyError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseTopology(text, file);
}

export function parseTopology(text: string, file: string): LoadedTopology {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const lineOf = (offset: number) => lines.linePos(offset).line;
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new TopologyError(`${file}:${lineOf(e.pos[0])}: ${e.message.split('\n')[0]}`);
  }
  const where = (at: SpecPath): string => {
    const line = lineOfPath(doc, at, lineOf);
    return `${file}${line ? `:${line}` : ''}: ${formatPath(at)}`;
  };
  const fail = (at: SpecPath, message: string): never => {
    throw new TopologyError(`${where(at)}: ${message}`);
  };
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) throw new TopologyError(`${file}: the file is empty (see docs/topology.md)`);
  if (!validate(data)) {
    const errors = validate.errors!;
    const e = errors.find((x) => x.keyword === 'anyOf') ?? errors[0]!;
    const [at, message] = describe(e);
    fail(at, message);
  }
  const topology = data as Topology;
  const name = topology.name ?? path.basename(file).replace(/\.[^.]*$/, '');
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) {
    throw new TopologyError(`${file}: the file name '${name}' is not a topology name: give one with 'name:' (lower-case letters, digits, . _ -)`);
  }
  return { topology, name, file, where, fail };
}

const TYPE_NAMES: Record<string, string> = { array: 'a list', object: 'a mapping (key: value)', string: 'a string', boolean: 'true or false', integer: 'an integer' };

function pathOf(e: ErrorObject): SpecPath {
  return e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

function describe(e: ErrorObject): [SpecPath, string] {
  const at = pathOf(e);
  const schema = e.parentSchema as { description?: string; properties?: Record<string, unknown> } | undefined;
  const shown = JSON.stringify(e.data);
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      return [[...at, extra], `unknown field in ${schema?.description ?? 'this entry'} (known: ${Object.keys(schema?.properties ?? {}).join(', ')})`];
    }
    case 'required':
      return [at, `${schema?.description ?? 'this entry'} needs '${(e.params as { missingProperty: string }).missingProperty}'`];
    case 'anyOf':
    case 'pattern':
      return [at, `${shown} is not ${schema?.description ?? 'valid'}`];
    case 'type':
      return [at, `${shown} is not ${schema?.description ?? TYPE_NAMES[(e.params as { type: string }).type] ?? (e.params as { type: string }).type}`];
    case 'minItems':
      return [at, `needs at least ${(e.params as { limit: number }).limit} item(s)`];
    default:
      return [at, `${shown} ${e.message ?? 'is invalid'}${schema?.description ? ` (${schema.description})` : ''}`];
  }
}

/** The line of the deepest node of `at` present in the document (1-based), if any. */
function lineOfPath(doc: Document, at: SpecPath, lineOf: (offset: number) => number): number | undefined {
  let node: unknown = doc.contents;
  let offset = (doc.contents as { range?: number[] } | null)?.range?.[0];
  for (const key of at) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (!pair) break;
      offset = (pair.key as { range?: number[] }).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      offset = (node as { range?: number[] } | undefined)?.range?.[0] ?? offset;
    } else break;
  }
  return offset === undefined ? undefined : lineOf(offset);
}
