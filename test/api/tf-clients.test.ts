// Contract tests: replays the requests TF's own clients made (vnc_api, opencontrail-netns,
// contrail-api-cli; recorded in test/fixtures/tf-clients, see its README) against the real
// server on real SQLite, and checks that every answer carries what those clients read
// (REFERENCE.md §1 "What TF's own clients expect").
//
// The recording server handed out its own uuids; a replay learns recorded uuid → Cirrus
// uuid from each answer (walking the recorded and the actual answer side by side) and
// substitutes the known ones in later paths, queries and bodies.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, type RunningServer, startServer } from '../support/server.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Recorded {
  seq: number;
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string>;
  body: Json;
  stub_status: number;
  stub_response: Json;
}

interface Step {
  name: string;
  requests: Recorded[];
}

const DIR = path.join(REPO, 'test/fixtures/tf-clients');
/** Where the recording server listened; its hrefs are rewritten to ours. */
const RECORDED_BASE = 'http://127.0.0.1:8082';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUIDS = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** POST paths that are actions, not creates. */
const ACTION_PATHS = new Set(['fqname-to-id', 'id-to-fqname', 'ref-update', 'list-bulk-collection', 'useragent-kv']);

/** Fields naming an object, compared exactly (after uuid and host translation). */
const IDENTITY = ['uuid', 'fq_name', 'name', 'href', 'parent_type', 'parent_uuid', 'parent_href', 'display_name'];

/**
 * Parts of the recorded answers Cirrus does not have, with why no client needs them.
 * Keys are dotted paths inside an object (`id_perms.uuid`) or top-level field names.
 */
const TF_ONLY: Record<string, string> = {
  // TF's uuid split into two 64-bit integers; none of the clients reads it (the object's
  // `uuid` string is what they use).
  'id_perms.uuid': 'TF-internal copy of the uuid as two integers',
  // TF makes a routing-instance child for each network; Cirrus has no routing-instance
  // resource (the agent derives one VRF per network) and the clients only list it.
  routing_instances: 'children of a type Cirrus does not serve',
};

/**
 * Homepage links that are in the recording but Cirrus does not serve: config-root is
 * TF's implicit parent of domains and virtual-machines, never addressed by the clients.
 */
const UNSERVED_TYPES = new Set(['config-root']);

/** Action links TF's clients look up by name in the homepage (REFERENCE.md §1). */
const CLIENT_ACTIONS = ['name-to-id', 'id-to-name', 'ref-update', 'list-bulk-collection', 'useragent-keyvalue', 'virtual-network-ip-alloc'];
/*
 * Also named there: `ref-relax-for-delete`, `prop-collection-get`, `prop-collection-update`.
 * vnc_api looks them up only inside its ref_relax_for_delete() and prop_collection_*()
 * methods, which none of the recorded clients calls, and Cirrus does not implement those
 * actions, so it does not advertise them; they are not checked here.
 */

// ---- helpers ------------------------------------------------------------------------

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asObject(v: Json | undefined, what: string): JsonObject {
  assert.ok(isObject(v), `${what} is not an object: ${JSON.stringify(v)}`);
  return v;
}

function asArray(v: Json | undefined, what: string): Json[] {
  assert.ok(Array.isArray(v), `${what} is not a list: ${JSON.stringify(v)}`);
  return v;
}

/** What names a list element: fq_name of list entries, `to` of links, the inner fq_name of detail entries. */
function identity(v: Json): string | undefined {
  if (!isObject(v)) return undefined;
  const name = v['fq_name'] ?? v['to'];
  if (name !== undefined) return JSON.stringify(name);
  const keys = Object.keys(v);
  if (keys.length !== 1) return undefined;
  const inner = identity(v[keys[0]!]!);
  return inner === undefined ? undefined : `${keys[0]} ${inner}`;
}

/**
 * Pairs the elements of a recorded list with ours: by name when the elements are named
 * objects (the recording has objects Cirrus lacks, and orders differ), else by position.
 */
function align(stub: Json[], ours: Json[]): { stub: Json; ours: Json | undefined; index: number }[] {
  const names = stub.map(identity);
  if (names.every((n) => n !== undefined)) {
    const byName = new Map(ours.map((o) => [identity(o), o] as const));
    return stub.map((s, index) => ({ stub: s, ours: byName.get(names[index]), index }));
  }
  return stub.map((s, index) => ({ stub: s, ours: ours[index], index }));
}

/** Python-style flag as the clients send it (`True`, `False`, bare presence). */
function queryFlag(q: Record<string, string | string[]>, name: string): boolean {
  const v = q[name];
  if (v === undefined) return false;
  const s = (Array.isArray(v) ? v[v.length - 1]! : v).toLowerCase();
  return s === '' || s === 'true' || s === '1';
}

function isLinkList(v: Json | undefined): v is JsonObject[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => isObject(x) && 'to' in x && 'href' in x && 'uuid' in x);
}

const isRefField = (k: string) => k.endsWith('_refs') || k.endsWith('_back_refs');

function loadSteps(file: string): Step[] {
  const steps: Step[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const o = JSON.parse(line) as JsonObject;
    if (typeof o['step'] === 'string') steps.push({ name: o['step'], requests: [] });
    else {
      if (!steps.length) steps.push({ name: '(start)', requests: [] });
      steps[steps.length - 1]!.requests.push(o as unknown as Recorded);
    }
  }
  return steps.filter((s) => s.requests.length > 0);
}

// ---- one replay: a server and the uuid map ---------------------------------------------

class Replay {
  /** Recorded uuid → Cirrus uuid, and back (the map must be one-to-one). */
  private readonly uuids = new Map<string, string>();
  private readonly reverse = new Map<string, string>();
  /** Recorded uuids of objects the recording server had and Cirrus does not (ip-fabric...), by type. */
  private readonly tfOnly = new Map<string, Set<string>>();

  constructor(readonly base: string) {}

  /** Every known recorded uuid in `text` replaced by ours. */
  subst(text: string): string {
    return text.replace(UUIDS, (u) => this.uuids.get(u.toLowerCase()) ?? u);
  }

  /** A recorded value as Cirrus should show it: our uuids, our base URL. */
  translate(v: Json): Json {
    return JSON.parse(this.subst(JSON.stringify(v)).split(RECORDED_BASE).join(this.base)) as Json;
  }

  async run(rec: Recorded): Promise<void> {
    const url = new URL(this.subst(rec.path), this.base);
    for (const [k, v] of Object.entries(rec.query)) for (const one of [v].flat()) url.searchParams.append(k, this.subst(one));
    const where = `seq ${rec.seq} ${rec.method} ${url.pathname}${url.search}`;
    // The clients' own headers (charset="UTF-8", X-Contrail-Useragent...); a null body is
    // no body, though the content type stays, as vnc_api sends it.
    const res = await fetch(url, {
      method: rec.method,
      headers: rec.headers,
      ...(rec.body !== null ? { body: this.subst(JSON.stringify(rec.body)) } : {}),
    });
    const text = await res.text();
    let ours: Json | undefined;
    try {
      ours = text ? (JSON.parse(text) as Json) : undefined;
    } catch {
      ours = text;
    }
    try {
      this.check(rec, res.status, ours);
    } catch (e) {
      const err = e as Error;
      const message = `${where}: ${err.message}\n  recorded ${rec.stub_status}: ${JSON.stringify(rec.stub_response).slice(0, 600)}\n  Cirrus ${res.status}: ${text.slice(0, 600)}`;
      throw new assert.AssertionError({ message });
    }
  }

  private check(rec: Recorded, status: number, ours: Json | undefined): void {
    const stub = rec.stub_status;
    // vnc_api accepts only 200 (201/204 raise); 404 and 409 are distinct exceptions.
    if (stub === 200 || stub === 404 || stub === 409) assert.equal(status, stub, `status ${status}, the client expects ${stub}`);
    else assert.equal(Math.floor(status / 100), Math.floor(stub / 100), `status ${status}, the client expects ${stub}`);

    const segments = rec.path.split('/').filter(Boolean);
    if (status >= 400) return this.checkError(rec, ours);

    if (rec.method === 'GET' && segments.length === 0) return this.checkHomepage(rec.stub_response, ours);
    if (rec.method === 'GET' && segments.length === 1) return this.checkList(rec, segments[0]!, ours);

    this.learn(rec.stub_response, ours, 'response');
    if (rec.method === 'POST' && segments.length === 1 && !ACTION_PATHS.has(segments[0]!)) {
      return this.checkCreate(segments[0]!.slice(0, -1), rec.stub_response, ours);
    }
    if (rec.method === 'GET' && segments.length === 2) {
      const type = segments[0]!;
      const o = asObject(asObject(ours, 'body')[type], `body.${type}`);
      return this.checkObject(asObject(asObject(rec.stub_response, 'recorded body')[type], 'recorded object'), o, type);
    }
    // DELETE: the clients do not parse the body of a successful delete.
    if (rec.method === 'DELETE') return;
    // PUT, fqname-to-id, id-to-fqname, ref-update: small answers the clients read whole.
    assert.deepEqual(ours, this.translate(rec.stub_response), 'answer differs from the recorded one');
  }

  /** Learns recorded → Cirrus uuids where both answers hold a uuid at the same place. */
  private learn(stub: Json, ours: Json | undefined, at: string): void {
    if (typeof stub === 'string') {
      if (typeof ours === 'string' && UUID.test(stub) && UUID.test(ours)) this.bind(stub.toLowerCase(), ours.toLowerCase(), at);
      return;
    }
    if (Array.isArray(stub)) {
      if (Array.isArray(ours)) for (const p of align(stub, ours)) this.learn(p.stub, p.ours, `${at}[${p.index}]`);
      return;
    }
    if (isObject(stub) && isObject(ours)) for (const [k, v] of Object.entries(stub)) this.learn(v, ours[k], `${at}.${k}`);
  }

  private bind(recorded: string, ours: string, at: string): void {
    const known = this.uuids.get(recorded);
    assert.ok(known === undefined || known === ours, `${at}: recorded uuid ${recorded} was ${known} in Cirrus so far, here it is ${ours}`);
    const back = this.reverse.get(ours);
    assert.ok(back === undefined || back === recorded, `${at}: Cirrus uuid ${ours} stands for recorded ${back} so far, here for ${recorded}`);
    this.uuids.set(recorded, ours);
    this.reverse.set(ours, recorded);
  }

  private checkError(rec: Recorded, ours: Json | undefined): void {
    const error = asObject(asObject(ours, 'error body')['error'], 'error body .error');
    const message = error['message'];
    assert.equal(typeof message, 'string', 'error.message is not a string');
    // contrail-api-cli parses the 409 of a delete, "<TF wording>: ['href', ...]", from the
    // message keystoneauth takes from a JSON body's error.message.
    if (rec.stub_status === 409 && rec.method === 'DELETE' && typeof rec.stub_response === 'string') {
      const recorded = rec.stub_response;
      const prefix = recorded.slice(0, recorded.indexOf('[') + 1);
      assert.ok(prefix.length > 1, `recorded 409 has no list: ${recorded}`);
      const text = message as string;
      assert.ok(text.startsWith(prefix), `409 message must start with ${JSON.stringify(prefix)}`);
      assert.ok(text.endsWith(']'), '409 message must end with the list of hrefs');
      for (const [, href] of recorded.matchAll(/'([^']+)'/g)) {
        const expected = this.translate(href!) as string;
        assert.ok(text.includes(`'${expected}'`), `409 message lacks '${expected}' (${href} in the recording)`);
      }
    }
  }

  private checkHomepage(stubJson: Json, ours: Json | undefined): void {
    const stub = asObject(stubJson, 'recorded homepage');
    const home = asObject(ours, 'homepage');
    // vnc_api strips the root href from every link to get paths: it must be ours exactly.
    assert.equal(home['href'], this.base, 'homepage href');
    const links = asArray(home['links'], 'homepage links').map((l, i) => asObject(asObject(l, `links[${i}]`)['link'], `links[${i}].link`));
    for (const [i, l] of links.entries()) {
      for (const k of ['rel', 'href', 'name', 'method']) assert.ok(k in l, `links[${i}].link has no ${k}`);
      assert.ok(String(l['href']).startsWith(this.base), `links[${i}].link.href ${String(l['href'])} is not under ${this.base}`);
    }
    const find = (rel: Json, name: Json) => links.find((l) => l['rel'] === rel && l['name'] === name);
    const stubLinks = asArray(stub['links'], 'recorded links').map((l) => asObject(asObject(l, 'recorded link')['link'], 'recorded link'));
    for (const s of stubLinks) {
      const rel = s['rel'];
      const wanted = ((rel === 'collection' || rel === 'resource-base') && !UNSERVED_TYPES.has(String(s['name']))) || (rel === 'action' && CLIENT_ACTIONS.includes(String(s['name'])));
      if (!wanted) continue;
      const mine = find(rel, s['name']);
      assert.ok(mine, `homepage lacks the ${String(rel)} link '${String(s['name'])}'`);
      assert.equal(mine['href'], this.translate(s['href']!), `href of the ${String(rel)} link '${String(s['name'])}'`);
    }
    for (const name of CLIENT_ACTIONS) assert.ok(find('action', name), `homepage lacks the action link '${name}'`);
  }

  private checkCreate(type: string, stubJson: Json, ours: Json | undefined): void {
    const s = asObject(asObject(stubJson, 'recorded body')[type], 'recorded object');
    const o = asObject(asObject(ours, 'body')[type], `body.${type}`);
    // vnc_api crashes without fq_name and reads uuid, name, href, parent_uuid/parent_href.
    for (const k of ['uuid', 'fq_name', 'name', 'href']) assert.ok(k in o, `create answer lacks ${k}`);
    for (const k of ['uuid', 'fq_name', 'name', 'href', 'parent_type', 'parent_uuid', 'parent_href']) {
      if (k in s) assert.deepEqual(o[k], this.translate(s[k]!), `create answer: ${k}`);
    }
  }

  /** An object as GET /<type>/<uuid> or a detail list shows it. */
  private checkObject(s: JsonObject, o: JsonObject, at: string): void {
    for (const [k, v] of Object.entries(s)) {
      if (k in TF_ONLY) continue;
      // TF's explicit "unset" (null, or [] once the last ref is gone): absent is the same.
      if (!(k in o) && (v === null || (Array.isArray(v) && v.length === 0))) continue;
      assert.ok(k in o, `${at}: lacks ${k} (the recording has it)`);
      if (IDENTITY.includes(k)) assert.deepEqual(o[k], this.translate(v), `${at}.${k}`);
      else if (isRefField(k)) this.checkLinks(v, o[k], `${at}.${k}`, true);
      else if (isLinkList(v)) this.checkLinks(v, o[k], `${at}.${k}`, false);
      else this.checkShape(v, o[k], `${at}.${k}`, k);
    }
    // Links the recording does not have mean a query flag (exclude_back_refs,
    // exclude_children, fields=) was not honoured.
    for (const [k, v] of Object.entries(o)) {
      if (!(k in s) && (isRefField(k) || isLinkList(v))) assert.fail(`${at}: has ${k}, which the recording does not (query flags not honoured?)`);
    }
  }

  /** refs and back-refs {to, uuid, href, attr}; children {to, uuid, href}. */
  private checkLinks(stubJson: Json, oursJson: Json | undefined, at: string, withAttr: boolean): void {
    const stub = asArray(stubJson, `recorded ${at}`);
    const ours = asArray(oursJson, at);
    for (const [i, l] of ours.entries()) {
      const link = asObject(l, `${at}[${i}]`);
      for (const k of ['to', 'uuid', 'href', ...(withAttr ? ['attr'] : [])]) assert.ok(k in link, `${at}[${i}] lacks ${k}`);
      assert.ok(String(link['href']).startsWith(`${this.base}/`) && String(link['href']).endsWith(`/${String(link['uuid'])}`), `${at}[${i}].href ${String(link['href'])}`);
    }
    const pairs = align(stub, ours);
    for (const p of pairs) {
      const s = asObject(p.stub, `recorded ${at}[${p.index}]`);
      assert.ok(p.ours !== undefined, `${at}: lacks the link to ${JSON.stringify(s['to'])}`);
      const o = asObject(p.ours, `${at}[${p.index}]`);
      for (const k of ['to', 'uuid', 'href']) assert.deepEqual(o[k], this.translate(s[k]!), `${at}[${p.index}].${k}`);
      if (withAttr) this.checkShape(s['attr'] ?? null, o['attr'], `${at}[${p.index}].attr`, 'attr');
    }
    const expected = new Set(pairs.map((p) => p.ours));
    for (const [i, o] of ours.entries()) assert.ok(expected.has(o), `${at}[${i}]: link to ${JSON.stringify(asObject(o, 'link')['to'])} is not in the recording`);
  }

  /**
   * Ours has what the recording has, field by field: uuids and hrefs exactly (translated),
   * other scalars by JSON type (addresses and ids are the server's choice). Recorded nulls
   * and empty lists are TF's explicit "unset", which Cirrus leaves out; the clients read
   * both as absent.
   */
  private checkShape(s: Json, o: Json | undefined, at: string, dotted: string): void {
    if (s === null || (Array.isArray(s) && s.length === 0) || dotted in TF_ONLY) return;
    if (Array.isArray(s)) {
      const ours = asArray(o, at);
      assert.equal(ours.length, s.length, `${at}: ${ours.length} elements, the recording has ${s.length}`);
      for (const p of align(s, ours)) this.checkShape(p.stub, p.ours, `${at}[${p.index}]`, dotted);
      return;
    }
    if (isObject(s)) {
      const ours = asObject(o, at);
      for (const [k, v] of Object.entries(s)) {
        if (v === null || (Array.isArray(v) && v.length === 0) || `${dotted}.${k}` in TF_ONLY) continue;
        assert.ok(k in ours, `${at}: lacks ${k} (the recording has it)`);
        this.checkShape(v, ours[k], `${at}.${k}`, `${dotted}.${k}`);
      }
      return;
    }
    if (typeof s === 'string' && (UUID.test(s) || s.startsWith(RECORDED_BASE))) assert.equal(o, this.translate(s), at);
    else assert.equal(typeof o, typeof s, `${at}: ${JSON.stringify(o)} is not a ${typeof s} like the recorded ${JSON.stringify(s)}`);
  }

  /** GET /<type>s: plain, detail, count or fields; compared on the objects Cirrus has. */
  private checkList(rec: Recorded, collection: string, ours: Json | undefined): void {
    const type = collection.slice(0, -1);
    const stub = asObject(rec.stub_response, 'recorded list')[collection]!;
    const body = asObject(ours, 'list body');
    assert.deepEqual(Object.keys(body), [collection], 'list answer keys');
    if (queryFlag(rec.query, 'count')) {
      const s = asObject(stub, 'recorded count');
      const o = asObject(body[collection], collection);
      assert.deepEqual(Object.keys(o), ['count'], `${collection} keys`);
      // The recording counted TF's pre-made objects too; Cirrus does not have them.
      const expected = (s['count'] as number) - (this.tfOnly.get(type)?.size ?? 0);
      assert.equal(o['count'], expected, `count (recorded ${String(s['count'])} including ${this.tfOnly.get(type)?.size ?? 0} objects only TF pre-creates)`);
      return;
    }
    const stubList = asArray(stub, 'recorded list');
    const list = asArray(body[collection], collection);
    this.learn(stubList, list, collection);
    const detail = queryFlag(rec.query, 'detail');
    const fields = new Set(String(rec.query['fields'] ?? '').split(',').filter(Boolean));
    const pairs = align(stubList, list);
    for (const p of pairs) {
      const at = `${collection}[${p.index}]`;
      const s = asObject(p.stub, `recorded ${at}`);
      const inner = detail ? asObject(s[type], `recorded ${at}.${type}`) : s;
      const uuid = String(inner['uuid']);
      if (p.ours === undefined) {
        // Only objects the recording server had before the client ran may be missing.
        assert.ok(!this.uuids.has(uuid), `${at}: lacks ${JSON.stringify(inner['fq_name'])}, created earlier in this replay`);
        let set = this.tfOnly.get(type);
        if (!set) this.tfOnly.set(type, (set = new Set()));
        set.add(uuid);
        continue;
      }
      const o = asObject(p.ours, at);
      if (detail) {
        assert.deepEqual(Object.keys(o), [type], `${at} keys`);
        this.checkObject(inner, asObject(o[type], `${at}.${type}`), `${at}.${type}`);
        continue;
      }
      const allowed = new Set(['href', 'fq_name', 'uuid', ...fields]);
      for (const k of Object.keys(o)) assert.ok(allowed.has(k), `${at}: unexpected ${k} in a plain list entry`);
      for (const k of ['href', 'fq_name', 'uuid']) assert.deepEqual(o[k], this.translate(s[k]!), `${at}.${k}`);
      for (const f of fields) {
        if (!(f in s) || ['href', 'fq_name', 'uuid'].includes(f)) continue;
        assert.ok(f in o, `${at}: lacks the requested field ${f}`);
        if (isRefField(f) || isLinkList(s[f])) this.checkLinks(s[f]!, o[f], `${at}.${f}`, isRefField(f));
        else this.checkShape(s[f]!, o[f], `${at}.${f}`, f);
      }
    }
    const matched = new Set(pairs.map((p) => p.ours));
    for (const [i, o] of list.entries()) assert.ok(matched.has(o), `${collection}[${i}] ${JSON.stringify(identity(o))} is not in the recorded list`);
  }
}

// ---- the tests: one server per recording, one test per step ---------------------------

const files = fs.existsSync(DIR) ? fs.readdirSync(DIR).filter((f) => f.endsWith('.jsonl')).sort() : [];

if (files.length !== 3) throw new Error(`expected the 3 TF client recordings in ${DIR}, found ${files.length}`);

for (const file of files) {
  describe(`TF client replay: ${file}`, () => {
    let server: RunningServer | undefined;
    let replay: Replay | undefined;
    let failed: string | undefined;
    before(async () => {
      server = await startServer();
      replay = new Replay(server.url);
    });
    after(async () => {
      await server?.cleanup();
    });
    for (const step of loadSteps(path.join(DIR, file))) {
      const first = step.requests[0]!.seq;
      const last = step.requests[step.requests.length - 1]!.seq;
      test(`seq ${first}${last !== first ? `-${last}` : ''}: ${step.name}`, async (t) => {
        // Later steps use what earlier ones made: after a failure they would only add noise.
        if (failed) return t.skip(`skipped: step "${failed}" failed`);
        try {
          for (const rec of step.requests) await replay!.run(rec);
        } catch (e) {
          failed = step.name;
          throw e;
        }
      });
    }
  });
}
