// DHCP messages (RFC 2131/2132) on Ethernet: decode a client's BOOTREQUEST with every
// length checked (a malformed one is an error text, never an exception), encode the
// server's BOOTREPLY. Pure.

import { formatIpv4, parseIpv4 } from '../../util/ipv4.js';

export const DhcpType = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;
export type DhcpType = (typeof DhcpType)[keyof typeof DhcpType];

/** Option codes the server reads or writes. */
export const Opt = {
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  DOMAIN_NAME: 15,
  MTU: 26,
  BROADCAST: 28,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  MESSAGE: 56,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLASSLESS_ROUTES: 121,
} as const;

export interface DhcpMessage {
  op: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  giaddr: string;
  /** The client's hardware address (Ethernet only), lower-case colon form. */
  chaddr: string;
  type: DhcpType;
  /** Options by code; a code repeated in the packet is one concatenated value (RFC 3396). */
  options: Map<number, Buffer>;
}

export const BOOTREQUEST = 1;
const BOOTREPLY = 2;
const COOKIE = 0x63825363;
const FIXED = 236;
const SNAME = [44, 108] as const;
const FILE = [108, 236] as const;
/** BOOTP's minimum message size: some clients drop shorter replies. */
const MIN_SIZE = 300;
export const BROADCAST_FLAG = 0x8000;

const ip = (buf: Buffer, at: number): string => formatIpv4(buf.readUInt32BE(at));

/** Reads options from buf[start, end) into `into`; returns an error text or undefined. */
function readOptions(buf: Buffer, start: number, end: number, into: Map<number, Buffer>): string | undefined {
  for (let i = start; i < end; ) {
    const code = buf[i]!;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) return undefined;
    if (i + 1 >= end) return `option ${code} truncated`;
    const len = buf[i + 1]!;
    if (i + 2 + len > end) return `option ${code} overruns the packet`;
    const value = buf.subarray(i + 2, i + 2 + len);
    const had = into.get(code);
    into.set(code, had ? Buffer.concat([had, value]) : value);
    i += 2 + len;
  }
  return 'options not terminated (no end option)';
}

/** A DHCP message, or why it is malformed. */
export function decodeDhcp(buf: Buffer): DhcpMessage | string {
  if (buf.length < FIXED + 4) return `too short (${buf.length} bytes)`;
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) return `bad op ${op}`;
  if (buf[1] !== 1 || buf[2] !== 6) return `not Ethernet (htype ${buf[1]}, hlen ${buf[2]})`;
  if (buf.readUInt32BE(FIXED) !== COOKIE) return 'bad magic cookie';
  const options = new Map<number, Buffer>();
  const bad = readOptions(buf, FIXED + 4, buf.length, options);
  if (bad) return bad;
  // Option overload: the file and sname fields carry options too.
  const overload = options.get(Opt.OVERLOAD);
  if (overload) {
    if (overload.length !== 1 || overload[0]! < 1 || overload[0]! > 3) return 'bad option overload';
    for (const [bit, [from, to]] of [[1, FILE], [2, SNAME]] as const) {
      if (!(overload[0]! & bit)) continue;
      const err = readOptions(buf, from, to, options);
      if (err) return `overloaded ${bit === 1 ? 'file' : 'sname'} field: ${err}`;
    }
  }
  const type = options.get(Opt.MESSAGE_TYPE);
  if (!type || type.length !== 1 || type[0]! < 1 || type[0]! > 8) return 'missing or bad message type';
  for (const code of [Opt.REQUESTED_IP, Opt.SERVER_ID]) {
    const v = options.get(code);
    if (v && v.length !== 4) return `option ${code} is not an address`;
  }
  const mac = [...buf.subarray(28, 34)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  return {
    op,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ip(buf, 12),
    yiaddr: ip(buf, 16),
    giaddr: ip(buf, 24),
    chaddr: mac,
    type: type[0] as DhcpType,
    options,
  };
}

/** An option's value as an address (undefined when absent). */
export const optionAddress = (m: DhcpMessage, code: number): string | undefined => {
  const v = m.options.get(code);
  return v?.length === 4 ? formatIpv4(v.readUInt32BE(0)) : undefined;
};

export interface DhcpReply {
  type: DhcpType;
  xid: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  /** The server's address (siaddr and the server identifier). */
  server: string;
  chaddr: string;
  /** In order; values longer than 255 bytes are split (RFC 3396). */
  options: [number, Buffer][];
}

export function encodeDhcp(r: DhcpReply): Buffer {
  const opts: Buffer[] = [Buffer.from([Opt.MESSAGE_TYPE, 1, r.type]), option(Opt.SERVER_ID, addr(r.server))];
  for (const [code, value] of r.options) opts.push(option(code, value));
  opts.push(Buffer.from([255]));
  const head = Buffer.alloc(FIXED + 4);
  head[0] = BOOTREPLY;
  head[1] = 1;
  head[2] = 6;
  head.writeUInt32BE(r.xid, 4);
  head.writeUInt16BE(r.flags & BROADCAST_FLAG, 10);
  head.writeUInt32BE(parseIpv4(r.ciaddr)!, 12);
  head.writeUInt32BE(parseIpv4(r.yiaddr)!, 16);
  if (r.type !== DhcpType.NAK) head.writeUInt32BE(parseIpv4(r.server)!, 20);
  Buffer.from(r.chaddr.split(':').map((h) => parseInt(h, 16))).copy(head, 28);
  head.writeUInt32BE(COOKIE, FIXED);
  const body = Buffer.concat([head, ...opts]);
  return body.length >= MIN_SIZE ? body : Buffer.concat([body, Buffer.alloc(MIN_SIZE - body.length)]);
}

function option(code: number, value: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < value.length || i === 0; i += 255) {
    const chunk = value.subarray(i, i + 255);
    parts.push(Buffer.from([code, chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}

// ---- option values ---------------------------------------------------------------------

export const addr = (...ips: string[]): Buffer => {
  const b = Buffer.alloc(4 * ips.length);
  ips.forEach((a, i) => b.writeUInt32BE(parseIpv4(a)!, 4 * i));
  return b;
};

export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

export const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};

export const maskOf = (prefixLen: number): string => formatIpv4(prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0);

/** Option 121 (RFC 3442): per route its prefix length, the significant octets of the prefix, the router. */
export function classlessRoutes(routes: { prefix: string; nextHop: string }[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of routes) {
    const [base, len] = r.prefix.split('/') as [string, string];
    const n = Number(len);
    parts.push(Buffer.from([n]), addr(base).subarray(0, Math.ceil(n / 8)), addr(r.nextHop));
  }
  return Buffer.concat(parts);
}
