// Denied attempts: a dropped packet never gets a conntrack entry, so the policy and
// security-group chains log their drops to an NFLOG group (nft.ts denyLog) with the deciding
// rule in the prefix, and lib/nflog.py reads them. Packets of one attempt (a SYN and its
// retries) are summed into one deny sample per 5-tuple and rule, flushed periodically.

import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import type { FlowSample } from '../../analytics/schema.js';
import { parseIpv4 } from '../../util/ipv4.js';
import { spawnReader } from './reader.js';
import { DENY_LOG_GROUP, parseDenyPrefix } from '../dataplane/deny-log.js';
import { type FlowContext, vnName } from './context.js';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../lib/nflog.py');

export interface LoggedPacket {
  t: number;
  prefix: string;
  mark: number;
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  len: number;
}

export class DeniedAttempts {
  private readonly open = new Map<string, FlowSample>();
  private lo = 0;

  /** `hi`: the first half of the flow uuids (the tracker's is another). */
  constructor(private readonly hi: number) {}

  /** Adds a logged packet; false when it is not a Cirrus deny or not understood. */
  add(p: LoggedPacket, ctx: FlowContext): boolean {
    const rule = parseDenyPrefix(p.prefix);
    const src = parseIpv4(p.src);
    const dst = parseIpv4(p.dst);
    if (!rule || src === undefined || dst === undefined) return false;
    const key = `${p.src}/${p.dst}/${p.proto}/${p.sport}/${p.dport}/${p.prefix}`;
    const a = this.open.get(key);
    if (a) {
      a.packets++;
      a.bytes += p.len;
      a.t = a.teardown_time = p.t;
      return true;
    }
    const network = ctx.marks.get(p.mark);
    const zone = network ? [...ctx.zones].find(([, ns]) => ns.includes(network))?.[0] : undefined;
    const s = zone !== undefined ? ctx.endpoint(zone, src) : {};
    const d = zone !== undefined ? ctx.endpoint(zone, dst) : {};
    this.open.set(key, {
        t: p.t,
        flow_hi: this.hi,
        flow_lo: ++this.lo,
        vrouter: ctx.host,
        vrouter_ip: ctx.underlayIp,
        other_vrouter_ip: (s.port ? d.vtep : s.vtep) ?? ctx.underlayIp,
        sourcevn: vnName(s.network ? s : { ...(network ? { network } : {}) }),
        destvn: vnName(d),
        sourceip: src,
        destip: dst,
        protocol: p.proto,
        sport: p.sport,
        dport: p.dport,
        direction_ing: s.port ? 1 : 0,
        action: 'deny',
        nw_ace_uuid: rule.kind === 'policy' ? rule.rule : null,
        sg_rule_uuid: rule.kind === 'sg' ? rule.rule : null,
        setup_time: p.t,
        teardown_time: p.t,
        bytes: p.len,
        packets: 1,
        reverse_bytes: 0,
        reverse_packets: 0,
        nat_sourceip: null,
        nat_destip: null,
        nat_sport: null,
        nat_dport: null,
    });
    return true;
  }

  /** The attempts gathered since the last flush. */
  flush(): FlowSample[] {
    const out = [...this.open.values()];
    this.open.clear();
    return out;
  }
}

/** Runs the NFLOG reader; `onPacket` for each logged packet, `onExit` when it ends. */
export function readDenyLog(onPacket: (p: LoggedPacket) => void, onExit: (why: string) => void): ChildProcess {
  const utf8 = new StringDecoder('utf8');
  let buf = '';
  return spawnReader('nflog reader', ['python3', SCRIPT, String(DENY_LOG_GROUP)], {
    onData: (chunk) => {
      buf += utf8.write(chunk);
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const p = JSON.parse(line) as Partial<LoggedPacket>;
          if (typeof p.prefix === 'string' && typeof p.t === 'number') onPacket(p as LoggedPacket);
        } catch {
          // a line cut by a crash: nothing to learn from it
        }
      }
    },
    onExit: (_code, why) => onExit(why),
  });
}
