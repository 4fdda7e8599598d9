// IPv4 + UDP headers of the packets the agent's services receive and send through the
// packet tap (which hands over whole IP packets). Pure: parse with every length checked,
// build with both checksums.

import { formatIpv4, parseIpv4 } from '../../util/ipv4.js';

export interface UdpPacket {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  payload: Buffer;
}

const PROTO_UDP = 17;
const UDP_HEADER = 8;

/** One's complement sum of 16-bit words (odd length padded with a zero byte). */
function sum16(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

const pseudoHeader = (src: Buffer, dst: Buffer, udpLength: number): number => sum16(Buffer.concat([src, dst, Buffer.from([0, PROTO_UDP, udpLength >> 8, udpLength & 255])]));

/** A UDP datagram in an IPv4 packet, or why it is not one (malformed). */
export function parseUdp(ip: Buffer): UdpPacket | string {
  if (ip.length < 20) return 'IPv4 header truncated';
  if (ip[0]! >> 4 !== 4) return 'not IPv4';
  const ihl = (ip[0]! & 15) * 4;
  if (ihl < 20 || ip.length < ihl) return 'bad IPv4 header length';
  const total = ip.readUInt16BE(2);
  if (total < ihl || total > ip.length) return 'bad IPv4 total length';
  if (ip.readUInt16BE(6) & 0x3fff) return 'fragment';
  if (ip[9] !== PROTO_UDP) return 'not UDP';
  if (sum16(ip.subarray(0, ihl)) !== 0xffff) return 'bad IPv4 header checksum';
  const udp = ip.subarray(ihl, total);
  if (udp.length < UDP_HEADER) return 'UDP header truncated';
  const length = udp.readUInt16BE(4);
  if (length < UDP_HEADER || length > udp.length) return 'bad UDP length';
  // The UDP checksum is not checked: a workload's packet is tapped before its checksum is
  // complete (checksum offload on veth leaves only the pseudo-header's sum in it).
  return {
    src: formatIpv4(ip.readUInt32BE(12)),
    dst: formatIpv4(ip.readUInt32BE(16)),
    sport: udp.readUInt16BE(0),
    dport: udp.readUInt16BE(2),
    payload: udp.subarray(UDP_HEADER, length),
  };
}

/** An IPv4 packet carrying the datagram (TTL 64, DF not set, checksums filled). */
export function buildUdp(p: UdpPacket): Buffer {
  const udpLength = UDP_HEADER + p.payload.length;
  const out = Buffer.alloc(20 + udpLength);
  out[0] = 0x45;
  out.writeUInt16BE(out.length, 2);
  out[8] = 64;
  out[9] = PROTO_UDP;
  out.writeUInt32BE(parseIpv4(p.src)!, 12);
  out.writeUInt32BE(parseIpv4(p.dst)!, 16);
  out.writeUInt16BE(~sum16(out.subarray(0, 20)) & 0xffff, 10);
  const udp = out.subarray(20);
  udp.writeUInt16BE(p.sport, 0);
  udp.writeUInt16BE(p.dport, 2);
  udp.writeUInt16BE(udpLength, 4);
  p.payload.copy(udp, UDP_HEADER);
  const checksum = ~sum16(udp, pseudoHeader(out.subarray(12, 16), out.subarray(16, 20), udpLength)) & 0xffff;
  udp.writeUInt16BE(checksum === 0 ? 0xffff : checksum, 6);
  return out;
}
