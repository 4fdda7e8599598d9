// Renders the OpenAPI document as the Markdown API reference (docs/api-reference.md):
// resource types with their fields, references and operations, then the other paths.
// Pure and deterministic: the same document always gives the same text, so a test can
// tell when the committed file no longer matches the schemas.

import { UuidPattern } from '../model/schemas.js';
import type { Method, OpenApiDocument, OperationObject, ParameterObject, Reference, ResponseObject, SchemaObject } from './openapi.js';

export const REFERENCE_FILE = 'docs/api-reference.md';
export const REGENERATE_COMMAND = 'npm run docs:api';

const METHODS: Method[] = ['get', 'post', 'put', 'delete'];

interface Row {
  field: string;
  type: string;
  description: string;
}

interface Op {
  method: Method;
  path: string;
  op: OperationObject;
}

export function renderApiReference(doc: OpenApiDocument): string {
  return new Renderer(doc).render();
}

class Renderer {
  private readonly out: string[] = [];
  private readonly anchors = new Set<string>();
  private readonly resources: string[];
  private readonly common: Set<string>;

  constructor(private readonly doc: OpenApiDocument) {
    this.resources = doc.tags.map((t) => t.name).filter((n) => doc.components.schemas[n]?.['x-cirrus-parents']);
    this.common = commonFields(this.resources.map((n) => doc.components.schemas[n]!));
  }

  render(): string {
    const { info } = this.doc;
    this.line(`# ${info.title}: reference`);
    this.line(`<!-- Generated from the OpenAPI document (src/api/openapi.ts) by \`${REGENERATE_COMMAND}\`: do not edit by hand. -->`);
    this.line(`OpenAPI ${this.doc.openapi}, version ${info.version}. Generated from the schemas that validate requests (\`src/model/\`, \`src/api/routes/\`); the server serves the same document at \`GET /openapi.json\`. The guide to the API, with examples and the IPAM rules, is [api.md](api.md).`);
    this.line(info.description);
    this.contents();
    this.errors();
    this.parameters();
    this.commonSection();
    this.heading(2, 'Resource types', 'resource-types');
    for (const name of this.resources) this.resource(name);
    for (const tag of this.doc.tags) {
      if (this.resources.includes(tag.name)) continue;
      this.heading(2, capitalize(tag.name), tagAnchor(tag.name));
      this.line(tag.description);
      for (const op of this.operations(tag.name)) this.operation(op);
    }
    this.checkLinks();
    return this.out.join('\n\n') + '\n';
  }

  // ---- sections ----------------------------------------------------------------------

  private contents(): void {
    this.line('## Contents');
    const items = [
      link('Errors', 'errors'),
      link('Parameters', 'parameters'),
      link('Common fields', 'common-fields'),
      `${link('Resource types', 'resource-types')}: ${this.resources.map((n) => link(n, typeAnchor(n))).join(', ')}`,
      ...this.doc.tags
        .filter((t) => !this.resources.includes(t.name))
        .map((t) => `${link(capitalize(t.name), tagAnchor(t.name))}: ${this.operations(t.name).map((o) => link(`${o.method.toUpperCase()} ${o.path}`, opAnchor(o))).join(', ')}`),
    ];
    this.line(items.map((i) => `- ${i}`).join('\n'));
  }

  private errors(): void {
    this.heading(2, 'Errors', 'errors');
    const error = this.doc.components.schemas['Error']!;
    if (error.description) this.line(`${capitalize(error.description)}:`);
    this.table(['Field', 'Type', 'Description'], this.fieldRows(error.properties ?? {}, error.required ?? [], '').map(rowCells));
    const statuses = Object.keys(this.doc.components.responses).sort();
    this.table(
      ['Status', 'When'],
      statuses.map((s) => [`${anchorTag(statusAnchor(s))}**${s}**`, this.doc.components.responses[s]!.description]),
    );
    this.record(...statuses.map(statusAnchor));
  }

  private parameters(): void {
    this.heading(2, 'Parameters', 'parameters');
    this.line('Shared by several operations; each operation lists those it takes.');
    const params = Object.entries(this.doc.components.parameters);
    this.table(
      ['Parameter', 'In', 'Type', 'Description'],
      params.map(([key, p]) => [`${anchorTag(paramAnchor(key))}${code(p.name)}`, p.in, paramType(p), p.description]),
    );
    this.record(...params.map(([key]) => paramAnchor(key)));
  }

  private commonSection(): void {
    this.heading(2, 'Common fields', 'common-fields');
    this.line('Every resource type has these fields, besides its own.');
    const first = this.doc.components.schemas[this.resources[0]!]!;
    const props = Object.fromEntries(Object.entries(first.properties ?? {}).filter(([k]) => this.common.has(k)));
    this.table(['Field', 'Type', 'Description'], this.fieldRows(props, [], '').map(rowCells));
  }

  private resource(name: string): void {
    const schema = this.doc.components.schemas[name]!;
    const props = Object.entries(schema.properties ?? {});
    this.heading(3, name, typeAnchor(name));
    if (schema.description) this.line(sentence(schema.description));
    const parents = schema['x-cirrus-parents'] ?? [];
    const linksOf = (key: 'x-cirrus-children' | 'x-cirrus-back-ref') =>
      props.filter(([, s]) => s[key]).map(([field, s]) => `${link(s[key]!, typeAnchor(s[key]!))} (${code(field)})`);
    const ops = this.operations(name);
    this.line(
      [
        `- **Parent:** ${parents.map((p) => (p === 'config-root' ? 'none (top level)' : link(p, typeAnchor(p)))).join(' or ')}`,
        `- **Children:** ${linksOf('x-cirrus-children').join(', ') || 'none'}`,
        `- **Referred to by:** ${linksOf('x-cirrus-back-ref').join(', ') || 'none'}`,
        `- **Paths:** ${[...new Set(ops.map((o) => code(o.path)))].join(', ')}`,
      ].join('\n'),
    );

    const own = props.filter(([k, s]) => !this.common.has(k) && !s['x-cirrus-ref'] && !s['x-cirrus-back-ref'] && !s['x-cirrus-children']);
    this.line('**Properties**');
    if (own.length) this.table(['Field', 'Type', 'Description'], this.fieldRows(Object.fromEntries(own), schema.required ?? [], '').map(rowCells));
    else this.line(`Only the ${link('common fields', 'common-fields')}.`);

    const refs = props.filter(([, s]) => s['x-cirrus-ref']);
    this.line('**References**');
    if (!refs.length) this.line('None.');
    else {
      this.table(
        ['Field', 'To', 'attr', 'Description'],
        refs.map(([field, s]) => [code(field), link(s['x-cirrus-ref']!, typeAnchor(s['x-cirrus-ref']!)), hasAttr(s) ? 'below' : 'none (`null`)', s.description ?? '']),
      );
      for (const [field, s] of refs.filter(([, s]) => hasAttr(s))) {
        const attr = s.items!.properties!['attr']!;
        this.line(`${code(`${field}[].attr`)}${attr.description ? `: ${attr.description}` : ''}`);
        this.table(['Field', 'Type', 'Description'], this.nestedRows(attr, 'attr').map(rowCells));
      }
    }

    this.line('**Operations**');
    this.line(ops.map((o) => this.operationItem(o)).join('\n'));
    this.record(...ops.map(opAnchor));
  }

  /** A resource operation as a list item: the request, then query, body, answer, errors. */
  private operationItem(o: Op): string {
    const { op } = o;
    const query = this.queryLinks(op);
    const parts = [
      query ? `query: ${query}` : '',
      op.requestBody ? `body: ${this.shape(op.requestBody.content['application/json'].schema)}` : '',
      `answer: ${this.shape(this.success(op).content!['application/json'].schema)}`,
      `errors: ${this.errorLinks(op)}`,
    ].filter(Boolean);
    const head = `- ${anchorTag(opAnchor(o))}${code(`${o.method.toUpperCase()} ${o.path}`)}: ${op.summary}.`;
    return [head, ...parts.map((p) => `  - ${p}`)].join('\n');
  }

  private operation(o: Op): void {
    const { op } = o;
    this.heading(3, code(`${o.method.toUpperCase()} ${o.path}`), opAnchor(o));
    this.line(sentence(op.summary) + (op.description ? ` ${op.description}` : ''));
    const params = (op.parameters ?? []).map((p) => this.param(p));
    if (params.length) {
      this.line('**Parameters**');
      this.table(
        ['Name', 'In', 'Type', 'Description'],
        params.map(({ key, p }) => [
          key ? link(code(p.name), paramAnchor(key)) : code(p.name),
          p.in,
          paramType(p),
          p.required ? `**required**: ${p.description}` : p.description,
        ]),
      );
    }
    if (op.requestBody) {
      const schema = op.requestBody.content['application/json'].schema;
      this.line(`**Request body** ${this.shape(schema)}`);
      const rows = this.nestedRows(schema, '');
      if (rows.length) this.table(['Field', 'Type', 'Description'], rows.map(rowCells));
    }
    const ok = this.success(op);
    const answer = ok.content?.['application/json'].schema;
    this.line(`**Answer (200)** ${answer ? this.shape(answer) : ''}${answer?.description ? `: ${answer.description}` : ''}`);
    const rows = answer ? this.nestedRows(answer, '') : [];
    if (rows.length) this.table(['Field', 'Type', 'Description'], rows.map(rowCells));
    const errors = this.errorLinks(op);
    if (errors !== '—') this.line(`**Errors** ${errors}`);
  }

  // ---- schemas as table rows ------------------------------------------------------------

  /** One row per field, nested fields as dotted paths (`a.b`, `a[].b`). */
  private fieldRows(props: Record<string, SchemaObject>, required: string[], prefix: string): Row[] {
    return Object.entries(props).flatMap(([name, s]) => {
      const path = `${prefix}${name}`;
      const flags = [
        required.includes(name) ? '**required**' : '',
        s['x-cirrus-server-owned'] ? '**server-owned**' : s.readOnly ? 'read-only' : '',
      ].filter(Boolean);
      const description = [flags.join(', '), s.description ?? ''].filter(Boolean).join(': ');
      return [{ field: path, type: this.typeOf(s), description }, ...this.nestedRows(s, path)];
    });
  }

  private nestedRows(s: SchemaObject, path: string): Row[] {
    const dot = path ? `${path}.` : '';
    if (s.properties) return this.fieldRows(s.properties, s.required ?? [], dot);
    if (s.type === 'array' && s.items?.properties) return this.fieldRows(s.items.properties, s.items.required ?? [], `${path}[].`);
    return [];
  }

  /** The type column: JSON type, enum values, bounds, pattern. */
  private typeOf(s: SchemaObject): string {
    const suffix = s.nullable ? ' or null' : '';
    if (s.$ref) return this.refLink(s.$ref) + suffix;
    if (s.const !== undefined) return code(JSON.stringify(s.const)) + suffix;
    const values = s.enum ?? (s.anyOf?.every((b) => b.const !== undefined) ? s.anyOf.map((b) => b.const) : undefined);
    if (values) return `one of ${values.map((v) => code(typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}${suffix}`;
    const union = s.anyOf ?? s.oneOf;
    if (union) return union.map((b) => this.typeOf(b)).join(' or ') + suffix;
    switch (s.type) {
      case 'array': {
        const count = bounds(s.minItems, s.maxItems, 'items');
        return `array of ${this.typeOf(s.items ?? {})}${count ? ` (${count})` : ''}${suffix}`;
      }
      case 'object': {
        const values = typeof s.additionalProperties === 'object' ? s.additionalProperties : s.patternProperties ? Object.values(s.patternProperties)[0] : undefined;
        return (values && !s.properties ? `map of ${this.typeOf(values)}` : 'object') + suffix;
      }
      case 'string': {
        if (s.pattern === UuidPattern) return 'uuid' + suffix;
        const details = [bounds(s.minLength, s.maxLength, 'characters'), s.pattern ? `matching ${code(s.pattern)}` : ''].filter(Boolean);
        return `string${details.length ? `, ${details.join(', ')}` : ''}${suffix}`;
      }
      case 'integer':
      case 'number': {
        const range = bounds(s.minimum, s.maximum, '');
        return `${s.type}${range ? `, ${range}` : ''}${suffix}`;
      }
      case undefined:
        return 'any';
      default:
        return s.type + suffix;
    }
  }

  /** A compact JSON outline of a body: `{uuid, fq_name, parent_type?}`, links for resources. */
  private shape(s: SchemaObject): string {
    if (s.$ref) return this.refLink(s.$ref);
    if (s.const !== undefined) return code(JSON.stringify(s.const));
    const union = s.anyOf ?? s.oneOf;
    if (union) return union.map((b) => this.shape(b)).join(' or ');
    if (s.type === 'array') return s.items && isStructured(s.items) ? `[${this.shape(s.items)}]` : `[${this.typeOf(s.items ?? {})}]`;
    if (s.type === 'object' && s.properties) {
      const required = s.required ?? [];
      const members = Object.entries(s.properties).map(([k, v]) => `${code(k)}${required.includes(k) ? '' : '?'}${isStructured(v) ? `: ${this.shape(v)}` : ''}`);
      return members.length ? `{${members.join(', ')}}` : code('{}');
    }
    if (s.type === 'object' && typeof s.additionalProperties === 'object') return `{${code('<key>')}: ${this.shape(s.additionalProperties)}}`;
    return this.typeOf(s);
  }

  private refLink(ref: string): string {
    const name = ref.split('/').pop()!;
    return this.resources.includes(name) ? link(name, typeAnchor(name)) : name === 'Error' ? link('Error', 'errors') : code(name);
  }

  // ---- operations ---------------------------------------------------------------------

  private operations(tag: string): Op[] {
    return Object.entries(this.doc.paths).flatMap(([path, item]) =>
      METHODS.filter((m) => item[m]?.tags.includes(tag)).map((method) => ({ method, path, op: item[method]! })),
    );
  }

  private param(p: ParameterObject | Reference): { key?: string; p: ParameterObject } {
    if (!('$ref' in p)) return { p };
    const key = p.$ref.split('/').pop()!;
    const found = this.doc.components.parameters[key];
    if (!found) throw new Error(`unknown parameter ${p.$ref}`);
    return { key, p: found };
  }

  private queryLinks(op: OperationObject): string {
    return (op.parameters ?? [])
      .map((p) => this.param(p))
      .filter(({ p }) => p.in === 'query')
      .map(({ key, p }) => (key ? link(p.name, paramAnchor(key)) : code(p.name)))
      .join(', ');
  }

  private success(op: OperationObject): ResponseObject {
    const ok = op.responses['200'];
    if (!ok || '$ref' in ok) throw new Error(`${op.summary}: no inline 200 answer`);
    return ok;
  }

  private errorLinks(op: OperationObject): string {
    const codes = Object.keys(op.responses).filter((c) => c !== '200').sort();
    return codes.map((c) => link(c, statusAnchor(c))).join(', ') || '—';
  }

  // ---- output -------------------------------------------------------------------------

  private line(text: string): void {
    this.out.push(text);
  }

  private heading(level: number, title: string, anchor: string): void {
    this.record(anchor);
    this.out.push(`${anchorTag(anchor)}\n${'#'.repeat(level)} ${title}`);
  }

  private table(header: string[], rows: string[][]): void {
    const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.map(cell).join(' | ')} |`);
    this.out.push(lines.join('\n'));
  }

  private record(...anchors: string[]): void {
    for (const a of anchors) {
      if (this.anchors.has(a)) throw new Error(`anchor ${a} defined twice`);
      this.anchors.add(a);
    }
  }

  /** Every in-page link has its anchor: a renamed section cannot leave dead links behind. */
  private checkLinks(): void {
    for (const m of this.out.join('\n').matchAll(/\]\(#([^)]+)\)/g)) {
      if (!this.anchors.has(m[1]!)) throw new Error(`link to #${m[1]} has no anchor`);
    }
  }
}

/** Fields every resource schema has, identically. */
function commonFields(schemas: SchemaObject[]): Set<string> {
  const [first, ...rest] = schemas;
  const same = (k: string, s: SchemaObject) => rest.every((r) => JSON.stringify(r.properties?.[k]) === JSON.stringify(s));
  return new Set(Object.entries(first?.properties ?? {}).filter(([k, s]) => same(k, s)).map(([k]) => k));
}

const hasAttr = (ref: SchemaObject): boolean => Object.keys(ref.items?.properties?.['attr'] ?? {}).length > 0;

const isStructured = (s: SchemaObject): boolean =>
  !!(s.$ref || s.anyOf || s.oneOf || (s.type === 'object' && (s.properties || typeof s.additionalProperties === 'object')) || (s.type === 'array' && s.items && isStructured(s.items)));

function paramType(p: ParameterObject): string {
  if (p.allowEmptyValue && p.schema.type === 'boolean') return 'flag';
  if (p.schema.pattern === UuidPattern) return 'uuid';
  const range = bounds(p.schema.minimum, p.schema.maximum, '');
  return `${p.schema.type ?? 'any'}${range ? `, ${range}` : ''}`;
}

function bounds(min: number | undefined, max: number | undefined, unit: string): string {
  const u = unit ? ` ${unit}` : '';
  if (min !== undefined && max !== undefined) return min === max ? `${min}${u}` : `${min} to ${max}${u}`;
  if (min !== undefined) return `at least ${min}${u}`;
  if (max !== undefined) return `at most ${max}${u}`;
  return '';
}

const rowCells = (r: Row): string[] => [code(r.field), r.type, r.description];

/** A table cell: one line, pipes escaped (GFM splits cells on them, even in code spans). */
const cell = (text: string): string => text.replace(/\n+/g, ' ').replace(/\|/g, '\\|');

function code(text: string): string {
  const fence = text.includes('`') ? '``' : '`';
  return `${fence}${text}${fence}`;
}

const link = (text: string, anchor: string): string => `[${text}](#${anchor})`;
const anchorTag = (anchor: string): string => `<a id="${anchor}"></a>`;
const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const sentence = (s: string): string => capitalize(/[.!?]$/.test(s) ? s : `${s}.`);
const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

const typeAnchor = (name: string): string => `type-${slug(name)}`;
const tagAnchor = (name: string): string => slug(name);
const paramAnchor = (key: string): string => `param-${slug(key)}`;
const statusAnchor = (status: string): string => `status-${status}`;
const opAnchor = (o: Op): string => `op-${o.method}-${slug(o.path) || 'root'}`;
