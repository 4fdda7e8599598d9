// The agent's end of lib/packet-tap.py, the long-lived helper holding a packet socket
// (Node has none): packets to UDP 67 and 53 from the workload interfaces come in with the
// interface they arrived on; replies go out of a given interface to a given MAC. The
// helper dies with the agent and is restarted if it exits.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TappedPacket {
  ifname: string;
  /** The Ethernet source, lower-case colon form. */
  srcMac: string;
  /** The IPv4 packet. */
  ip: Buffer;
}

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../lib/packet-tap.py');
const RESTART_MS = 1_000;

const frame = (body: Buffer): Buffer => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
};

const macText = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

export class PacketTap {
  private child: ChildProcessWithoutNullStreams | undefined;
  private interfaces: string[] = [];
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private stderr = '';

  constructor(private readonly onPacket: (p: TappedPacket) => void) {}

  start(): void {
    if (this.stopped || this.child) return;
    const child = spawn('python3', [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let buf: Buffer = Buffer.alloc(0);
    child.stdout.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let at = 0;
      while (buf.length - at >= 4) {
        const len = buf.readUInt32BE(at);
        if (buf.length - at - 4 < len) break;
        const body = buf.subarray(at + 4, at + 4 + len);
        at += 4 + len;
        const n = body[0]!;
        if (body.length < 1 + n + 6) continue;
        this.onPacket({ ifname: body.subarray(1, 1 + n).toString(), srcMac: macText(body.subarray(1 + n, 7 + n)), ip: body.subarray(7 + n) });
      }
      buf = buf.subarray(at);
    });
    child.stderr.on('data', (b: Buffer) => (this.stderr = (this.stderr + b.toString()).slice(-2000)));
    child.stdin.on('error', () => undefined);
    const restart = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopped) return;
      console.error(`cirrus agent: DHCP/DNS packet helper ${why}${this.stderr.trim() ? `: ${this.stderr.trim()}` : ''}; restarting`);
      this.timer = setTimeout(() => this.start(), RESTART_MS);
    };
    child.on('exit', (code) => restart(`exited (${code})`));
    child.on('error', (e) => restart(`cannot run python3 ${SCRIPT}: ${e.message}`));
    this.sendInterfaces();
  }

  /** The workload interfaces whose packets the agent wants. */
  setInterfaces(names: string[]): void {
    const sorted = [...names].sort();
    if (sorted.join('\n') === this.interfaces.join('\n')) return;
    this.interfaces = sorted;
    this.sendInterfaces();
  }

  send(ifname: string, dstMac: string, ip: Buffer): void {
    const name = Buffer.from(ifname);
    const mac = Buffer.from(dstMac.split(':').map((h) => parseInt(h, 16)));
    this.child?.stdin.write(frame(Buffer.concat([Buffer.from([1, name.length]), name, mac, ip])));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.child?.kill();
    this.child = undefined;
  }

  private sendInterfaces(): void {
    this.child?.stdin.write(frame(Buffer.concat([Buffer.from([2]), Buffer.from(this.interfaces.join('\n'))])));
  }
}
