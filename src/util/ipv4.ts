// IPv4 arithmetic on unsigned 32-bit integers. IPAM and validation share it.

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses dotted-quad notation; returns undefined for anything else (no shorthand forms). */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== undefined;
}

export interface Cidr {
  /** Network address as an unsigned integer. */
  base: number;
  prefixLen: number;
}

export function cidrSize(prefixLen: number): number {
  return 2 ** (32 - prefixLen);
}

export function cidrLast(c: Cidr): number {
  return c.base + cidrSize(c.prefixLen) - 1;
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip <= cidrLast(c);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.base <= cidrLast(b) && b.base <= cidrLast(a);
}

export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefixLen}`;
}

/** Parses "a.b.c.d/n"; the address must be the network address (no host bits). */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  if (slash < 0) return `'${text}' is not a CIDR (expected a.b.c.d/n)`;
  const base = parseIpv4(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  const prefixLen = /^\d{1,2}$/.test(lenText) ? Number(lenText) : NaN;
  if (base === undefined) return `'${text.slice(0, slash)}' is not an IPv4 address`;
  if (!(prefixLen >= 0 && prefixLen <= 32)) return `prefix length '${lenText}' is not between 0 and 32`;
  return checkNetworkAddress(base, prefixLen) ?? { base, prefixLen };
}

/** Returns an error text when host bits are set. */
export function checkNetworkAddress(base: number, prefixLen: number): string | undefined {
  const size = cidrSize(prefixLen);
  if (base % size !== 0) {
    const aligned = base - (base % size);
    return `${formatIpv4(base)}/${prefixLen} has host bits set (did you mean ${formatIpv4(aligned)}/${prefixLen}?)`;
  }
  return undefined;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Normalises a MAC to lower case; returns undefined unless it is a unicast colon-separated MAC. */
export function normaliseMac(text: string): string | undefined {
  const mac = text.toLowerCase();
  if (!MAC.test(mac)) return undefined;
  if (parseInt(mac.slice(0, 2), 16) & 1) return undefined; // multicast bit
  if (mac === '00:00:00:00:00:00') return undefined;
  return mac;
}
