// docs/api-reference.md is the OpenAPI document rendered: it must match the schemas as they
// are now, and read as a reference (every type, path, field fact, working links, tables).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { openApiDocument } from '../../src/api/openapi.js';
import { REFERENCE_FILE, REGENERATE_COMMAND, renderApiReference } from '../../src/api/reference.js';
import { TYPE_NAMES } from '../../src/model/types.js';
import { REPO } from '../support/server.js';

const rendered = renderApiReference(openApiDocument());

/** The section of one resource type. */
function section(type: string): string {
  const start = rendered.indexOf(`<a id="type-${type}"></a>`);
  assert.ok(start >= 0, `no section for ${type}`);
  const next = rendered.indexOf('<a id="type-', start + 1);
  return rendered.slice(start, next < 0 ? undefined : next);
}

/** The table row of a field in a section. */
function row(text: string, field: string): string {
  const line = text.split('\n').find((l) => l.startsWith(`| \`${field}\` |`));
  assert.ok(line, `no row for ${field}`);
  return line;
}

test(`${REFERENCE_FILE} is up to date with the schemas`, () => {
  const committed = fs.readFileSync(path.join(REPO, REFERENCE_FILE), 'utf8');
  if (committed === rendered) return;
  const a = committed.split('\n');
  const b = rendered.split('\n');
  const i = a.findIndex((line, n) => line !== b[n]);
  const at = i < 0 ? Math.min(a.length, b.length) : i;
  assert.fail(
    `${REFERENCE_FILE} is stale: the schemas changed since it was generated. Run \`${REGENERATE_COMMAND}\` and commit the result.\n` +
      `first difference at line ${at + 1}:\n  file:      ${a[at] ?? '(end)'}\n  generated: ${b[at] ?? '(end)'}`,
  );
});

test('rendering is deterministic', () => {
  assert.equal(renderApiReference(openApiDocument()), rendered);
});

test('every resource type and every path and method has its entry', () => {
  for (const type of TYPE_NAMES) section(type);
  const doc = openApiDocument();
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item)) {
      assert.ok(rendered.includes(`\`${method.toUpperCase()} ${p}\``), `${method.toUpperCase()} ${p} missing`);
    }
  }
  for (const p of ['/fqname-to-id', '/ref-update', '/_cirrus/snapshot', '/_cirrus/watch', '/virtual-network/{uuid}/ip-alloc']) {
    assert.ok(doc.paths[p], `${p} is in the document`);
  }
});

test('fields show their type, enum values, bounds, required and server-owned flags', () => {
  const vn = section('virtual-network');
  assert.match(row(vn, 'virtual_network_properties.forwarding_mode'), /one of `l2_l3`, `l3`, `l2`/);
  assert.match(row(vn, 'virtual_network_properties.vxlan_network_identifier'), /integer, 1 to 8388607/);
  assert.match(row(vn, 'virtual_network_network_id'), /\*\*server-owned\*\*/);
  assert.doesNotMatch(row(vn, 'router_external'), /server-owned|required/);
  assert.match(row(vn, 'attr.ipam_subnets[].subnet.ip_prefix_len'), /\*\*required\*\*/);
  assert.match(vn, /\| `network_ipam_refs` \| \[network-ipam\]\(#type-network-ipam\) \| below \|/);
  assert.match(vn, /\*\*Parent:\*\* \[project\]\(#type-project\)/);
  assert.match(vn, /\[floating-ip-pool\]\(#type-floating-ip-pool\) \(`floating_ip_pools`\)/);
  assert.match(row(section('network-policy'), 'network_policy_entries.policy_rule[].direction'), /\*\*required\*\*.*one of|one of .*\*\*required\*\*/);
  assert.match(row(section('security-group'), 'security_group_id'), /\*\*server-owned\*\*/);
  assert.match(section('virtual-machine-interface'), /\*\*Parent:\*\* \[project\]\(#type-project\) or \[virtual-machine\]\(#type-virtual-machine\)/);
  assert.match(section('domain'), /\*\*Parent:\*\* none \(top level\)/);
});

test('operations list their parameters, answers and error statuses', () => {
  const vn = section('virtual-network');
  assert.match(vn, /`GET \/virtual-networks`[^\n]*\n {2}- query: \[detail\]\(#param-detail\)/);
  assert.match(vn, /`DELETE \/virtual-network\/\{uuid\}`[\s\S]*?errors: \[404\]\(#status-404\), \[409\]\(#status-409\)/);
  const watch = rendered.slice(rendered.indexOf('<a id="op-get-cirrus-watch"></a>'));
  assert.match(watch, /\| `since` \| query \| integer, at least 0 \| \*\*required\*\*: revision/);
  assert.match(watch, /\*\*Errors\*\* \[400\]\(#status-400\), \[410\]\(#status-410\)/);
  assert.match(rendered, /<a id="status-409"><\/a>\*\*409\*\* \| Conflict/);
});

test('no raw HTML outside code spans but the anchors, and every table row has its columns', () => {
  const prose = rendered
    .replace(/<a id="[a-z0-9-]+"><\/a>/g, '')
    .replace(/<!--[^\n]*-->/g, '')
    .replace(/``[^\n]*?``|`[^`\n]*`/g, '');
  assert.doesNotMatch(prose, /[<>]/);
  let columns = 0;
  for (const line of rendered.split('\n')) {
    if (!line.startsWith('|')) {
      columns = 0;
      continue;
    }
    const cells = line.replace(/\\\|/g, '').split('|').length - 2;
    if (columns === 0) columns = cells;
    assert.equal(cells, columns, `row with ${cells} cells in a ${columns}-column table: ${line}`);
  }
});

test('a link to a section that does not exist fails the rendering', () => {
  const doc = openApiDocument();
  delete doc.components.schemas['network-ipam'];
  doc.tags = doc.tags.filter((t) => t.name !== 'network-ipam');
  assert.throws(() => renderApiReference(doc), /link to #type-network-ipam has no anchor/);
});
