// Conntrack entries from `conntrack -o xml,id,ktimestamp` output (events with -E, the table
// with -L). XML because it is the only output form with the kernel's start and stop times in
// nanoseconds (the text form prints them as dates to the second). conntrack prints one
// <flow> element a line; this reads them straight from the pipe's bytes in one pass per line
// (no string per chunk, no regular expression, no array per entry) into one entry object it
// reuses: at thousands of events a second, parsing was most of the agent's CPU and garbage.

export interface CtTuple {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  packets: number;
  bytes: number;
}

export interface CtEntry {
  /** The event (-E); undefined for a table listing. */
  event: 'new' | 'update' | 'destroy' | undefined;
  id: number;
  /** The first zone of the element (a direction's own zone, else the entry's); 0 without one. */
  zone: number;
  protocol: number;
  /** Ports are 0 for protocols without them (ICMP). */
  orig: CtTuple;
  reply: CtTuple;
  /** Kernel timestamps, µs since the epoch (0: unknown). */
  startUs: number;
  stopUs: number;
}

export const newEntry = (): CtEntry => ({ event: undefined, id: 0, zone: 0, protocol: 0, orig: newTuple(), reply: newTuple(), startUs: 0, stopUs: 0 });
const newTuple = (): CtTuple => ({ src: 0, dst: 0, sport: 0, dport: 0, packets: 0, bytes: 0 });

/** A line longer than this is not conntrack's (an element is ~800 bytes): it is dropped. */
const MAX_LINE = 16_384;

/**
 * Splits output into lines across chunk boundaries and parses each flow line into one
 * reused entry. `onEntry` gets that object: copy what is kept, it changes with the next line.
 */
export class ConntrackXmlReader {
  /** The start of a line whose end has not arrived. */
  private carry: Buffer | undefined;
  /** Inside an overlong line: the rest of it, up to its newline, goes. */
  private skipping = false;
  private readonly entry = newEntry();
  /** Lines with a <flow> that were not an IPv4 flow or not understood, and overlong lines. */
  unparsed = 0;

  constructor(private readonly onEntry: (e: CtEntry) => void) {}

  push(chunk: Buffer): void {
    let from = 0;
    if (this.carry || this.skipping) {
      const nl = chunk.indexOf(10);
      if (!this.skipping) this.carry = this.keep(this.carry, nl < 0 ? chunk : chunk.subarray(0, nl));
      if (nl < 0) return;
      const line = this.carry;
      this.carry = undefined;
      this.skipping = false;
      if (line) this.line(line, 0, line.length);
      from = nl + 1;
    }
    for (let nl = chunk.indexOf(10, from); nl >= 0; nl = chunk.indexOf(10, from)) {
      this.line(chunk, from, nl);
      from = nl + 1;
    }
    if (from < chunk.length) this.carry = this.keep(undefined, chunk.subarray(from));
  }

  /** The output ended: a last line without its newline. */
  end(): void {
    const rest = this.carry;
    this.carry = undefined;
    this.skipping = false;
    if (rest) this.line(rest, 0, rest.length);
  }

  /** `part` appended to the carried start of a line (copies: a view would keep the whole chunk alive). */
  private keep(carry: Buffer | undefined, part: Buffer): Buffer | undefined {
    if ((carry?.length ?? 0) + part.length > MAX_LINE) {
      this.skipping = true;
      this.unparsed++;
      return undefined;
    }
    return carry ? Buffer.concat([carry, part]) : Buffer.from(part);
  }

  private line(b: Buffer, start: number, end: number): void {
    const r = parseFlow(b, start, end, this.entry);
    if (r === FLOW) this.onEntry(this.entry);
    else if (r === BAD) this.unparsed++;
  }
}

const FLOW = 0;
const NOT_A_FLOW = 1;
const BAD = 2;

// Bytes.
const LT = 60;
const GT = 62;
const SLASH = 47;
const QUOTE = 34;
const DOT = 46;
const D0 = 48;
const D9 = 57;

// Where the scanner is.
const NONE = 0;
const ORIG = 1;
const REPLY = 2;
const INDEPENDENT = 3;

// What an element must have had.
const O_SRC = 1;
const O_DST = 2;
const R_SRC = 4;
const R_DST = 8;
const ID = 16;
const ZONE = 32;
const COMPLETE = O_SRC | O_DST | R_SRC | R_DST | ID;

/** The scanner's position after a value: avoids an object per value. */
let at = 0;

/** Unsigned decimal at b[i] up to the next non-digit, or -1 (none, or past 2^53). */
function number(b: Uint8Array, i: number, end: number): number {
  let v = 0;
  const first = i;
  for (let c = b[i]!; i < end && c >= D0 && c <= D9; c = b[++i]!) v = v * 10 + (c - D0);
  at = i;
  return i === first || v > Number.MAX_SAFE_INTEGER ? -1 : v;
}

/** A dotted quad at b[i] as an unsigned integer, or -1. */
function ipv4(b: Uint8Array, i: number, end: number): number {
  let v = 0;
  for (let part = 0; part < 4; part++) {
    if (part > 0 && b[i++] !== DOT) return -1;
    const o = number(b, i, Math.min(end, i + 3));
    if (o < 0 || o > 255 || (b[i] === D0 && at - i > 1)) return -1;
    v = v * 256 + o;
    i = at;
  }
  return v;
}

/** The text of a tag ending at b[i] ('>'), up to its closing tag: a number, or -1. */
function numberText(b: Uint8Array, i: number, end: number): number {
  if (b[i] !== GT) return -1;
  const v = number(b, i + 1, end);
  return b[at] === LT ? v : -1;
}

/** The same for an address. */
function ipv4Text(b: Uint8Array, i: number, end: number): number {
  if (b[i] !== GT) return -1;
  const v = ipv4(b, i + 1, end);
  return b[at] === LT ? v : -1;
}

/** The same for nanoseconds since the epoch (19 digits: past 2^53), as exact µs: all but the last three digits. */
function microsText(b: Uint8Array, i: number, end: number): number {
  if (b[i] !== GT) return -1;
  let j = ++i;
  while (j < end && b[j]! >= D0 && b[j]! <= D9) j++;
  if (b[j] !== LT || j === i) return -1;
  return j - i <= 3 ? 0 : number(b, i, j - 3);
}

/** The index after `name="` within the tag whose name ends at i, or -1. */
function attribute(b: Uint8Array, i: number, end: number): number {
  while (i < end && b[i] !== QUOTE && b[i] !== GT) i++;
  return b[i] === QUOTE ? i + 1 : -1;
}

const isNameByte = (c: number) => (c >= 97 && c <= 122) || (c >= D0 && c <= D9);

/**
 * One <flow> element in b[start, end) into `e`: FLOW, NOT_A_FLOW (no <flow> on the line: the
 * XML header, <conntrack>) or BAD (not IPv4, cut short, a value that is not one). Tags are
 * told apart by length and a letter or two; those not used are skipped.
 */
export function parseFlow(b: Uint8Array, start: number, end: number, e: CtEntry): number {
  let i = start;
  while (i < end && b[i] !== LT) i++;
  // <flow
  if (!(i + 5 < end && b[i + 1] === 102 && b[i + 2] === 108 && b[i + 3] === 111 && b[i + 4] === 119)) return NOT_A_FLOW;
  e.event = undefined;
  e.zone = e.protocol = e.startUs = e.stopUs = 0;
  const { orig, reply } = e;
  orig.sport = orig.dport = orig.packets = orig.bytes = 0;
  reply.sport = reply.dport = reply.packets = reply.bytes = 0;
  let seen = 0;
  let dir = NONE;
  i += 5;
  if (b[i] === 32) {
    // type="new|update|destroy"
    const a = attribute(b, i, end);
    const c = a < 0 ? 0 : b[a];
    e.event = c === 110 ? 'new' : c === 100 ? 'destroy' : c === 117 ? 'update' : undefined;
  }
  for (;;) {
    while (i < end && b[i] !== LT) i++;
    if (++i >= end) return BAD; // no </flow>: cut short
    if (b[i] === SLASH) {
      const c = b[i + 1];
      if (c === 102) return (seen & COMPLETE) === COMPLETE && i + 5 < end && b[i + 4] === 119 && b[i + 5] === GT ? FLOW : BAD; // </flow>
      if (c === 109 && b[i + 2] === 101) dir = NONE; // </meta> (not </mark>)
      continue;
    }
    const n = i;
    while (i < end && isNameByte(b[i]!)) i++;
    const c0 = b[n];
    const inTuple = dir === ORIG || dir === REPLY;
    const t = dir === ORIG ? orig : reply;
    let v = 0;
    switch (i - n) {
      case 2: // id (of the entry; ICMP's is elsewhere)
        if (c0 !== 105 || dir !== INDEPENDENT) break;
        if ((e.id = v = numberText(b, i, end)) < 0) return BAD;
        seen |= ID;
        break;
      case 3: // src, dst
        if (!inTuple || !((c0 === 115 && b[n + 1] === 114) || (c0 === 100 && b[n + 1] === 115))) break;
        if ((v = ipv4Text(b, i, end)) < 0) return BAD;
        if (c0 === 115) t.src = v;
        else t.dst = v;
        seen |= c0 === 115 ? (dir === ORIG ? O_SRC : R_SRC) : dir === ORIG ? O_DST : R_DST;
        break;
      case 4: // meta, zone, stop; a second flow is garbage
        if (c0 === 109 && b[n + 1] === 101) {
          const a = attribute(b, i, end);
          const d = a < 0 ? 0 : b[a];
          dir = d === 111 ? ORIG : d === 114 ? REPLY : d === 105 ? INDEPENDENT : NONE;
        } else if (c0 === 122 && !(seen & ZONE)) {
          if ((e.zone = v = numberText(b, i, end)) < 0) return BAD;
          seen |= ZONE;
        } else if (c0 === 115 && b[n + 1] === 116) {
          if ((e.stopUs = v = microsText(b, i, end)) < 0) return BAD;
        } else if (c0 === 102) return BAD;
        break;
      case 5: // start (not state), sport, dport, bytes
        if (c0 === 115 && b[n + 1] === 116) {
          if (b[n + 3] === 114 && (e.startUs = v = microsText(b, i, end)) < 0) return BAD;
          break;
        }
        if (!inTuple || (c0 !== 115 && c0 !== 100 && c0 !== 98)) break;
        if ((v = numberText(b, i, end)) < 0) return BAD;
        if (c0 === 115) t.sport = v;
        else if (c0 === 100) t.dport = v;
        else t.bytes = v;
        break;
      case 6: {
        // layer3 (IPv4 only), layer4 (the protocol)
        if (!inTuple || c0 !== 108 || b[n + 1] !== 97) break;
        const a = attribute(b, i, end);
        if (a < 0 || (v = number(b, a, end)) < 0) return BAD;
        if (b[n + 5] === 51 && v !== 2) return BAD; // not IPv4
        if (b[n + 5] === 52) e.protocol = v;
        break;
      }
      case 7: // packets
        if (!inTuple || c0 !== 112) break;
        if ((t.packets = v = numberText(b, i, end)) < 0) return BAD;
        break;
    }
  }
}
