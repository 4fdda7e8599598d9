// TF's Sandesh XML, as TF's agent introspect (port 8085) answers and TF's tools read it
// (XPath on element names: contrail-introspect-cli, support scripts). A response is an
// element with type="sandesh"; each field is an element named after it with a `type`
// attribute; a struct nests as <f type="struct"><StructName>..</StructName></f>; a list as
// <f type="list"><list type="struct" size="N"><StructName>..</StructName>..</list></f>
// (scalars in a list are <element>s). No XML declaration: lxml refuses one with an encoding
// on an already-decoded string, which is how some of these tools parse.

export type ScalarType = 'string' | 'bool' | 'byte' | 'i16' | 'i32' | 'i64' | 'u16' | 'u32' | 'u64' | 'double';

interface Scalar {
  kind: 'scalar';
  type: ScalarType;
  value: string | number | boolean;
}

export interface Struct {
  kind: 'struct';
  name: string;
  fields: Fields;
}

interface List {
  kind: 'list';
  elem: ScalarType | 'struct';
  items: (Scalar | Struct)[];
}

export type Value = Scalar | Struct | List;

/** Fields in document order; undefined ones are left out (Sandesh's optional fields). */
export type Fields = Readonly<Record<string, Value | undefined>>;

const RANGES: Partial<Record<ScalarType, [number, number]>> = {
  byte: [-128, 127],
  i16: [-32768, 32767],
  i32: [-2147483648, 2147483647],
  u16: [0, 65535],
  u32: [0, 4294967295],
  i64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  u64: [0, Number.MAX_SAFE_INTEGER],
};

function scalar(type: ScalarType, value: string | number | boolean): Scalar {
  const range = RANGES[type];
  if (range && !(Number.isInteger(value) && (value as number) >= range[0] && (value as number) <= range[1])) {
    throw new TypeError(`sandesh: ${String(value)} is not a ${type}`);
  }
  return { kind: 'scalar', type, value };
}

export const str = (v: string): Scalar => scalar('string', v);
export const bool = (v: boolean): Scalar => scalar('bool', v);
export const i16 = (v: number): Scalar => scalar('i16', v);
export const i32 = (v: number): Scalar => scalar('i32', v);
export const u32 = (v: number): Scalar => scalar('u32', v);
export const struct = (name: string, fields: Fields): Struct => ({ kind: 'struct', name, fields });
export const structList = (name: string, items: Fields[]): List => ({ kind: 'list', elem: 'struct', items: items.map((f) => struct(name, f)) });
export const stringList = (items: string[]): List => ({ kind: 'list', elem: 'string', items: items.map(str) });
export const i32List = (items: number[]): List => ({ kind: 'list', elem: 'i32', items: items.map(i32) });

// Characters XML 1.0 cannot carry at all (controls, lone surrogates, U+FFFE/U+FFFF).
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Text safe in element content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(NOT_XML, '\uFFFD').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function tag(name: string): string {
  // Names come from this code, never from requests: a bad one is a programming error.
  if (!NAME.test(name)) throw new TypeError(`sandesh: '${name}' is not an element name`);
  return name;
}

function text(s: Scalar): string {
  return escapeXml(String(s.value));
}

function renderStruct(s: Struct): string {
  return `<${tag(s.name)}>${renderFields(s.fields)}</${s.name}>`;
}

function renderFields(fields: Fields): string {
  let out = '';
  for (const [name, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const n = tag(name);
    if (v.kind === 'scalar') out += `<${n} type="${v.type}">${text(v)}</${n}>`;
    else if (v.kind === 'struct') out += `<${n} type="struct">${renderStruct(v)}</${n}>`;
    else {
      const items = v.items.map((i) => (i.kind === 'struct' ? renderStruct(i) : `<element>${text(i)}</element>`)).join('');
      out += `<${n} type="list"><list type="${v.elem}" size="${v.items.length}">${items}</list></${n}>`;
    }
  }
  return out;
}

/** One complete response document: <Name type="sandesh">fields<more>false</more></Name>. */
export function sandeshResponse(name: string, fields: Fields): string {
  return `<${tag(name)} type="sandesh">${renderFields({ ...fields, more: bool(false) })}</${name}>`;
}

/** TF's answer to a request it cannot serve (an unknown VRF index, a malformed address). */
export function errorResponse(message: string): string {
  return sandeshResponse('ErrorResp', { resp: str(message) });
}

// ---- the agent's records (field names and types of TF's agent.sandesh) -----------------

/** An interface as ItfSandeshData shows it. */
export interface ItfRow {
  index: number;
  /** The host-side interface. */
  name: string;
  uuid: string;
  /** The routing instance (TF: network fq_name + ":" + network name); empty when unknown. */
  vrfName: string;
  active: boolean;
  enabled: boolean;
  mac: string;
  ip: string;
  vmUuid: string;
  vmName: string;
  vnName: string;
  projectUuid: string;
  /** Kernel ifindex, -1 while the interface does not exist. */
  osIfindex: number;
  rxVlan: number;
  txVlan: number;
}

export function itfResponse(rows: ItfRow[]): string {
  const active = (b: boolean) => str(b ? 'Active' : 'Inactive');
  const items = rows.map((r): Fields => ({
    index: i32(r.index),
    name: str(r.name),
    uuid: str(r.uuid),
    vrf_name: str(r.vrfName),
    active: active(r.active),
    ipv4_active: active(r.active),
    l2_active: active(r.active),
    dhcp_service: str('Disable'),
    dns_service: str('Disable'),
    type: str('vport'),
    label: i32(-1),
    l2_label: i32(-1),
    vxlan_id: i32(0),
    vn_name: str(r.vnName),
    vm_uuid: str(r.vmUuid),
    vm_name: str(r.vmName),
    ip_addr: str(r.ip),
    mac_addr: str(r.mac),
    policy: str('Disable'),
    fip_list: structList('FloatingIpSandeshList', []),
    mdata_ip_addr: str('0.0.0.0'),
    os_ifindex: i32(r.osIfindex),
    sg_uuid_list: structList('VmIntfSgUuid', []),
    vm_project_uuid: str(r.projectUuid),
    admin_state: str(r.enabled ? 'Enabled' : 'Disabled'),
    tx_vlan_id: i16(r.txVlan),
    rx_vlan_id: i16(r.rxVlan),
    fixed_ip4_list: stringList(r.ip ? [r.ip] : []),
  }));
  return sandeshResponse('ItfResp', { itf_list: structList('ItfSandeshData', items) });
}

/** A routing instance as VrfSandeshData shows it; its table indexes are all `index`, as in TF. */
export interface VrfRow {
  name: string;
  index: number;
  vn: string;
  vxlanId: number;
}

export function vrfListResponse(rows: VrfRow[]): string {
  const items = rows.map((r): Fields => ({
    name: str(r.name),
    ucindex: i32(r.index),
    mcindex: i32(r.index),
    l2index: i32(r.index),
    source: str('Config'),
    uc6index: i32(r.index),
    vn: str(r.vn),
    table_label: i32(-1),
    vxlan_id: i32(r.vxlanId),
    evpnindex: i32(r.index),
    brindex: i32(r.index),
  }));
  return sandeshResponse('VrfListResp', { vrf_list: structList('VrfSandeshData', items) });
}

/** A next hop: a local interface, the host itself (gateway and service addresses), a tunnel to another host, or a drop. */
export interface NextHop {
  type: 'interface' | 'receive' | 'discard' | 'tunnel';
  index: number;
  itf?: string;
  mac?: string;
  /** Tunnels: this host's and the other host's underlay addresses, and the VNI. */
  sip?: string;
  dip?: string;
  vni?: number;
}

export interface RouteRow {
  prefix: string;
  plen: number;
  vrf: string;
  /** The network the destination belongs to (empty for discard routes). */
  vn: string;
  peer: string;
  nh: NextHop;
}

export function inet4UcRouteResponse(rows: RouteRow[]): string {
  const items = rows.map((r): Fields => {
    const nh: Fields = {
      type: str(r.nh.type),
      ref_count: i32(1),
      policy: str('disabled'),
      itf: r.nh.itf !== undefined ? str(r.nh.itf) : undefined,
      mac: r.nh.mac !== undefined ? str(r.nh.mac) : undefined,
      vrf: r.nh.type === 'receive' || r.nh.type === 'tunnel' ? str(r.vrf) : undefined,
      sip: r.nh.sip !== undefined ? str(r.nh.sip) : undefined,
      dip: r.nh.dip !== undefined ? str(r.nh.dip) : undefined,
      tunnel_type: r.nh.type === 'tunnel' ? str('VXLAN') : undefined,
      nh_index: i32(r.nh.index),
    };
    const path: Fields = {
      nh: struct('NhSandeshData', nh),
      label: i32(-1),
      vxlan_id: i32(r.nh.vni ?? 0),
      peer: str(r.peer),
      dest_vn_list: stringList(r.vn ? [r.vn] : []),
      unresolved: str('false'),
      sg_list: i32List([]),
      supported_tunnel_type: str(r.nh.type === 'tunnel' ? 'VXLAN' : ''),
      active_tunnel_type: str(r.nh.type === 'tunnel' ? 'VXLAN' : ''),
      stale: bool(false),
      path_preference_data: struct('PathPreferenceSandeshData', { sequence: i32(0), preference: i32(100), ecmp: bool(false), wait_for_traffic: bool(false) }),
      active_label: i32(-1),
      communities: stringList([]),
    };
    return {
      src_ip: str(r.prefix),
      src_plen: i32(r.plen),
      src_vrf: str(r.vrf),
      path_list: structList('PathSandeshData', [path]),
      multicast: bool(false),
    };
  });
  return sandeshResponse('Inet4UcRouteResp', { route_list: structList('RouteUcSandeshData', items) });
}
