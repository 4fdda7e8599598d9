// DNS messages (RFC 1035, EDNS0 of RFC 6891) as the agent's resolver needs them: decode a
// query of one question with every length and pointer checked (a malformed one is an error
// text, never an exception), encode its answer. Pure.

export const RR = { A: 1, PTR: 12, AAAA: 28, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = (typeof Rcode)[keyof typeof Rcode];

export interface DnsQuery {
  id: number;
  opcode: number;
  /** Recursion desired (echoed). */
  rd: boolean;
  /** The question's labels as sent (their case is echoed). */
  labels: Buffer[];
  /** The name in lower case, dot-separated, without the root dot ('' for the root). */
  name: string;
  qtype: number;
  qclass: number;
  /** The client sent an EDNS0 OPT record. */
  edns: boolean;
}

const HEADER = 12;
const QR = 0x8000;
const AA = 0x0400;
const RD = 0x0100;
const MAX_NAME = 255;
/** Our answers are small; this is what we tell EDNS clients we accept. */
const EDNS_SIZE = 1232;

/** Reads a (possibly compressed) name at `at`; returns its labels and where the name ends in place. */
function readName(buf: Buffer, at: number): { labels: Buffer[]; end: number } | string {
  const labels: Buffer[] = [];
  let length = 1;
  let end: number | undefined;
  let i = at;
  for (let jumps = 0; ; ) {
    if (i >= buf.length) return 'name truncated';
    const len = buf[i]!;
    if (len === 0) {
      end ??= i + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (i + 1 >= buf.length) return 'name pointer truncated';
      const target = ((len & 0x3f) << 8) | buf[i + 1]!;
      // Only backwards, and not forever: a pointer loop is hostile.
      if (target >= i || ++jumps > 32) return 'bad name pointer';
      end ??= i + 2;
      i = target;
      continue;
    }
    if (len & 0xc0) return 'bad label type';
    if (i + 1 + len > buf.length) return 'label truncated';
    length += len + 1;
    if (length > MAX_NAME) return 'name too long';
    labels.push(buf.subarray(i + 1, i + 1 + len));
    i += 1 + len;
  }
  return { labels, end };
}

/** A query, or why it is malformed. */
export function decodeDnsQuery(buf: Buffer): DnsQuery | string {
  if (buf.length < HEADER) return 'header truncated';
  const flags = buf.readUInt16BE(2);
  if (flags & QR) return 'a response, not a query';
  const [qd, an, ns, ar] = [4, 6, 8, 10].map((o) => buf.readUInt16BE(o)) as [number, number, number, number];
  if (qd !== 1) return `${qd} questions (one expected)`;
  if (an || ns || ar > 1) return 'unexpected records in a query';
  const q = readName(buf, HEADER);
  if (typeof q === 'string') return q;
  if (q.end + 4 > buf.length) return 'question truncated';
  let offset = q.end + 4;
  let edns = false;
  if (ar === 1) {
    // Only EDNS0's OPT: the root name, type 41, then class, TTL, and rdata within the packet.
    if (offset + 11 > buf.length || buf[offset] !== 0 || buf.readUInt16BE(offset + 1) !== RR.OPT) return 'additional record is not EDNS0 OPT';
    const rdlength = buf.readUInt16BE(offset + 9);
    if (offset + 11 + rdlength > buf.length) return 'OPT record truncated';
    offset += 11 + rdlength;
    edns = true;
  }
  if (offset !== buf.length) return 'trailing bytes';
  return {
    id: buf.readUInt16BE(0),
    opcode: (flags >> 11) & 15,
    rd: (flags & RD) !== 0,
    labels: q.labels,
    name: q.labels.map((l) => l.toString('latin1').toLowerCase()).join('.'),
    qtype: buf.readUInt16BE(q.end),
    qclass: buf.readUInt16BE(q.end + 2),
    edns,
  };
}

export interface DnsAnswer {
  type: typeof RR.A | typeof RR.PTR;
  ttl: number;
  /** An address (A) or a name (PTR). */
  data: string;
}

const encodeLabels = (labels: Buffer[]): Buffer => Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), l]), Buffer.from([0])]);
export const encodeName = (name: string): Buffer => encodeLabels(name ? name.split('.').map((l) => Buffer.from(l, 'latin1')) : []);

export function encodeDnsResponse(q: DnsQuery, rcode: Rcode, answers: DnsAnswer[], authoritative: boolean): Buffer {
  const head = Buffer.alloc(HEADER);
  head.writeUInt16BE(q.id, 0);
  head.writeUInt16BE(QR | (q.opcode << 11) | (authoritative ? AA : 0) | (q.rd ? RD : 0) | rcode, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answers.length, 6);
  head.writeUInt16BE(q.edns ? 1 : 0, 10);
  const question = Buffer.concat([encodeLabels(q.labels), Buffer.from([q.qtype >> 8, q.qtype & 255, q.qclass >> 8, q.qclass & 255])]);
  const records = answers.map((a) => {
    const rdata = a.type === RR.A ? Buffer.from(a.data.split('.').map(Number)) : encodeName(a.data);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc000 | HEADER, 0); // the question's name
    rr.writeUInt16BE(a.type, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(a.ttl, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  const opt = q.edns ? [Buffer.from([0, RR.OPT >> 8, RR.OPT & 255, EDNS_SIZE >> 8, EDNS_SIZE & 255, 0, 0, 0, 0, 0, 0])] : [];
  return Buffer.concat([head, question, ...records, ...opt]);
}
