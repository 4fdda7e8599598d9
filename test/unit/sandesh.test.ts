// Sandesh XML as TF's tools read it: element names, nesting, `type` attributes, escaping.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ItfRow,
  bool,
  errorResponse,
  escapeXml,
  i16,
  i32,
  inet4UcRouteResponse,
  itfResponse,
  sandeshResponse,
  str,
  stringList,
  struct,
  structList,
  u32,
  vrfListResponse,
} from '../../src/agent/http/sandesh.js';
import { all, at, leaves, parseXml, textAt } from '../support/xml.js';

/** Every leaf but a list's <element> carries a type, as TF's renderer does. */
function assertTyped(doc: string): void {
  for (const leaf of leaves(parseXml(doc))) if (leaf.name !== 'element') assert.ok(leaf.attrs['type'], `<${leaf.name}> has a type`);
}

test('scalars, structs and lists render with their type attributes', () => {
  const doc = sandeshResponse('FooResp', {
    s: str('x'),
    n: i32(-5),
    u: u32(4294967295),
    b: bool(true),
    skipped: undefined,
    nested: struct('Inner', { v: i16(7) }),
    rows: structList('Row', [{ a: str('1') }, { a: str('2') }]),
    names: stringList(['p', 'q']),
    none: structList('Row', []),
  });
  assert.equal(
    doc,
    '<FooResp type="sandesh"><s type="string">x</s><n type="i32">-5</n><u type="u32">4294967295</u><b type="bool">true</b>' +
      '<nested type="struct"><Inner><v type="i16">7</v></Inner></nested>' +
      '<rows type="list"><list type="struct" size="2"><Row><a type="string">1</a></Row><Row><a type="string">2</a></Row></list></rows>' +
      '<names type="list"><list type="string" size="2"><element>p</element><element>q</element></list></names>' +
      '<none type="list"><list type="struct" size="0"></list></none>' +
      '<more type="bool">false</more></FooResp>',
  );
  assert.doesNotMatch(doc, /^<\?xml/, 'no XML declaration');
  assertTyped(doc);
});

test('values are escaped; characters XML cannot carry are replaced', () => {
  assert.equal(escapeXml(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&apos;');
  assert.equal(escapeXml('x\u0000y\u001bz\uFFFF'), 'x\uFFFDy\uFFFDz\uFFFD');
  assert.equal(escapeXml('\uD83D\uDE00 ok, lone \uD83D'), '\uD83D\uDE00 ok, lone \uFFFD');
  const doc = sandeshResponse('R', { v: str('</v><evil type="string">1</evil>&amp;') });
  const root = parseXml(doc);
  assert.equal(textAt(root, 'v'), '</v><evil type="string">1</evil>&amp;');
  assert.equal(all(root, 'evil').length, 0);
});

test('out-of-range integers and bad element names are programming errors', () => {
  assert.throws(() => i32(2 ** 31), /not a i32/);
  assert.throws(() => i32(1.5), /not a i32/);
  assert.throws(() => u32(-1), /not a u32/);
  assert.throws(() => i16(40000), /not a i16/);
  assert.throws(() => sandeshResponse('R', { 'a b': str('x') }), /not an element name/);
  assert.throws(() => sandeshResponse('R<', {}), /not an element name/);
});

const row: ItfRow = {
  index: 0,
  name: 'veth1',
  uuid: '11111111-2222-3333-4444-555555555555',
  vrfName: 'default-domain:admin:red:red',
  active: true,
  enabled: true,
  mac: '02:11:11:11:11:22',
  ip: '10.1.0.3',
  vmUuid: '99999999-2222-3333-4444-555555555555',
  vmName: 'web <1>',
  vnName: 'default-domain:admin:red',
  projectUuid: '88888888-2222-3333-4444-555555555555',
  osIfindex: 7,
  rxVlan: -1,
  txVlan: -1,
};

test('ItfResp: itf_list of ItfSandeshData with TF field names', () => {
  const doc = itfResponse([row, { ...row, index: 1, name: 'cv-0123', active: false, enabled: false, osIfindex: -1 }]);
  assertTyped(doc);
  const root = parseXml(doc);
  assert.equal(root.name, 'ItfResp');
  assert.equal(root.attrs['type'], 'sandesh');
  const list = at(root, 'itf_list/list');
  assert.deepEqual([at(root, 'itf_list').attrs['type'], list.attrs['type'], list.attrs['size']], ['list', 'struct', '2']);
  const [a, b] = all(root, 'ItfSandeshData');
  assert.ok(a && b);
  const want: Record<string, [string, string]> = {
    index: ['i32', '0'],
    name: ['string', 'veth1'],
    uuid: ['string', row.uuid],
    vrf_name: ['string', row.vrfName],
    active: ['string', 'Active'],
    mac_addr: ['string', row.mac],
    ip_addr: ['string', row.ip],
    vm_uuid: ['string', row.vmUuid],
    vm_name: ['string', 'web <1>'],
    vn_name: ['string', row.vnName],
    label: ['i32', '-1'],
    os_ifindex: ['i32', '7'],
    admin_state: ['string', 'Enabled'],
  };
  for (const [field, [type, value]] of Object.entries(want)) {
    assert.equal(at(a, field).attrs['type'], type, field);
    assert.equal(textAt(a, field), value, field);
  }
  assert.equal(textAt(b, 'active'), 'Inactive');
  assert.equal(textAt(b, 'admin_state'), 'Disabled');
  assert.match(doc, /<vm_name type="string">web &lt;1&gt;<\/vm_name>/);
  assert.equal(at(root, 'more').attrs['type'], 'bool');
});

test('VrfListResp: vrf_list of VrfSandeshData (name, ucindex)', () => {
  const doc = vrfListResponse([{ name: 'default-domain:admin:red:red', index: 3, vn: 'default-domain:admin:red', vxlanId: 0 }]);
  assertTyped(doc);
  const vrf = all(parseXml(doc), 'VrfSandeshData');
  assert.equal(vrf.length, 1);
  assert.equal(textAt(vrf[0]!, 'name'), 'default-domain:admin:red:red');
  assert.equal(at(vrf[0]!, 'ucindex').attrs['type'], 'i32');
  assert.equal(textAt(vrf[0]!, 'ucindex'), '3');
  assert.equal(textAt(vrf[0]!, 'vn'), 'default-domain:admin:red');
});

test('Inet4UcRouteResp: RouteUcSandeshData with path_list, nh and the fields TF tools read', () => {
  const vrf = 'default-domain:admin:red:red';
  const doc = inet4UcRouteResponse([
    { prefix: '0.0.0.0', plen: 0, vrf, vn: '', peer: 'Local', nh: { type: 'discard', index: 0 } },
    { prefix: '10.1.0.1', plen: 32, vrf, vn: 'default-domain:admin:red', peer: 'Local', nh: { type: 'receive', index: 1, itf: 'lo' } },
    { prefix: '10.1.0.3', plen: 32, vrf, vn: 'default-domain:admin:red', peer: 'LocalVmPort', nh: { type: 'interface', index: 7, itf: 'veth1', mac: row.mac } },
  ]);
  assertTyped(doc);
  const routes = all(parseXml(doc), 'RouteUcSandeshData');
  assert.equal(routes.length, 3);
  const r = routes[2]!;
  assert.equal(textAt(r, 'src_ip'), '10.1.0.3');
  assert.equal(at(r, 'src_plen').attrs['type'], 'i32');
  assert.equal(textAt(r, 'src_plen'), '32');
  assert.equal(textAt(r, 'src_vrf'), vrf);
  assert.equal(at(r, 'path_list/list').attrs['size'], '1');
  const path = at(r, 'path_list/list/PathSandeshData');
  assert.equal(at(path, 'nh').attrs['type'], 'struct');
  const nh = at(path, 'nh/NhSandeshData');
  assert.deepEqual([textAt(nh, 'type'), textAt(nh, 'itf'), textAt(nh, 'mac'), textAt(nh, 'nh_index')], ['interface', 'veth1', row.mac, '7']);
  // contrail-introspect-cli's `vr route` reads these on every path.
  for (const p of ['peer', 'label', 'active_label', 'vxlan_id', 'path_preference_data/PathPreferenceSandeshData/preference']) at(path, p);
  assert.deepEqual(all(path, 'element').map((e) => e.text), ['default-domain:admin:red']);
  assert.equal(textAt(at(routes[0]!, 'path_list/list/PathSandeshData/nh/NhSandeshData'), 'type'), 'discard');
  assert.equal(textAt(at(routes[1]!, 'path_list/list/PathSandeshData/nh/NhSandeshData'), 'itf'), 'lo');
});

test('a tunnel route shows the other host, the VNI and VXLAN, as TF shows a remote path', () => {
  const doc = inet4UcRouteResponse([{ prefix: '10.1.0.9', plen: 32, vrf: 'd:p:red:red', vn: 'd:p:red', peer: 'c1', nh: { type: 'tunnel', index: 4, sip: '10.254.0.1', dip: '10.254.0.2', vni: 8388609 } }]);
  assertTyped(doc);
  const path = at(parseXml(doc), 'route_list/list/RouteUcSandeshData/path_list/list/PathSandeshData');
  const nh = at(path, 'nh/NhSandeshData');
  assert.deepEqual(['type', 'sip', 'dip', 'tunnel_type', 'vrf'].map((k) => textAt(nh, k)), ['tunnel', '10.254.0.1', '10.254.0.2', 'VXLAN', 'd:p:red:red']);
  assert.deepEqual(['peer', 'vxlan_id', 'active_tunnel_type'].map((k) => textAt(path, k)), ['c1', '8388609', 'VXLAN']);
});

test('ErrorResp carries the message in resp', () => {
  const root = parseXml(errorResponse("Invalid VRF index '9'"));
  assert.equal(root.name, 'ErrorResp');
  assert.equal(textAt(root, 'resp'), "Invalid VRF index '9'");
});

test('the test reader refuses malformed documents', () => {
  for (const bad of ['<a><b></a>', '<a>', '<a></a><b></b>', 'x<a></a>', '<a>&bogus;</a>', '<a x=1></a>']) assert.throws(() => parseXml(bad), bad);
});
