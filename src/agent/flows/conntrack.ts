// Conntrack entries as `conntrack -o xml,id,ktimestamp` prints them (events with -E, the
// table with -L), parsed into plain records. Counters need net.netfilter.nf_conntrack_acct
// and the kernel's start/stop times nf_conntrack_timestamp, both per network namespace.

import type { ChildProcess } from 'node:child_process';
import { parseIpv4 } from '../../util/ipv4.js';
import { run } from '../dataplane/kernel.js';
import { spawnReader } from './reader.js';

export interface CtTuple {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  packets: number;
  bytes: number;
}

export interface CtEntry {
  /** 'new' and 'destroy' for events; undefined for a table listing. */
  event?: 'new' | 'destroy';
  id: number;
  zone: number;
  protocol: number;
  orig: CtTuple;
  reply: CtTuple;
  /** Kernel timestamps, ns since the epoch (0: unknown). */
  startNs: number;
  stopNs: number;
}

const FLOW = /<flow( type="(\w+)")?>([\s\S]*?)<\/flow>/g;

function tuple(meta: string | undefined): CtTuple | undefined {
  if (!meta) return undefined;
  const src = parseIpv4(/<src>([^<]+)<\/src>/.exec(meta)?.[1] ?? '');
  const dst = parseIpv4(/<dst>([^<]+)<\/dst>/.exec(meta)?.[1] ?? '');
  if (src === undefined || dst === undefined) return undefined; // not IPv4
  const num = (tag: string) => Number(new RegExp(`<${tag}>(\\d+)</${tag}>`).exec(meta)?.[1] ?? 0);
  return { src, dst, sport: num('sport'), dport: num('dport'), packets: num('packets'), bytes: num('bytes') };
}

/** One `<flow>` element; undefined for what is not an IPv4 flow. */
export function parseFlow(xml: string, type?: string): CtEntry | undefined {
  const orig = tuple(/<meta direction="original">([\s\S]*?)<\/meta>/.exec(xml)?.[1]);
  const reply = tuple(/<meta direction="reply">([\s\S]*?)<\/meta>/.exec(xml)?.[1]);
  const independent = /<meta direction="independent">([\s\S]*?)<\/meta>/.exec(xml)?.[1] ?? '';
  const id = /<id>(\d+)<\/id>/.exec(independent)?.[1];
  if (!orig || !reply || id === undefined) return undefined;
  const zone = Number(/<zone[^>]*>(\d+)<\/zone>/.exec(xml)?.[1] ?? 0);
  const protocol = Number(/<layer4 protonum="(\d+)"/.exec(xml)?.[1] ?? 0);
  const ns = (tag: string) => Number(new RegExp(`<${tag}>(\\d+)</${tag}>`).exec(independent)?.[1] ?? 0);
  return {
    ...(type === 'new' || type === 'destroy' ? { event: type } : {}),
    id: Number(id),
    zone,
    protocol,
    orig,
    reply,
    startNs: ns('start'),
    stopNs: ns('stop'),
  };
}

/** Every `<flow>` in a chunk of output; returns the entries and the unparsed rest. */
export function parseFlows(text: string): { entries: CtEntry[]; rest: string } {
  const entries: CtEntry[] = [];
  let end = 0;
  FLOW.lastIndex = 0;
  for (let m = FLOW.exec(text); m; m = FLOW.exec(text)) {
    const e = parseFlow(m[3]!, m[2]);
    if (e) entries.push(e);
    end = FLOW.lastIndex;
  }
  return { entries, rest: text.slice(end) };
}

/** Streams NEW and DESTROY events to `onEntries` until killed; `onExit` when it ends. */
export function watchConntrack(onEntries: (entries: CtEntry[]) => void, onExit: (why: string) => void): ChildProcess {
  let buf = '';
  const argv = ['conntrack', '-E', '-e', 'NEW,DESTROY', '-o', 'xml,id,ktimestamp', '--buffer-size', '8388608'];
  return spawnReader('conntrack -E', argv, (chunk) => {
    const { entries, rest } = parseFlows(buf + chunk);
    buf = rest.length > 1 << 20 ? '' : rest;
    if (entries.length) onEntries(entries);
  }, onExit);
}

/** The table (IPv4), with counters and start times. */
export async function listConntrack(): Promise<CtEntry[]> {
  const r = await run('conntrack', ['-L', '-f', 'ipv4', '-o', 'xml,id,ktimestamp']);
  if (r.code !== 0) throw new Error(`conntrack -L: ${r.stderr.trim()}`);
  return parseFlows(r.stdout).entries;
}
