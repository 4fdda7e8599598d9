// cirrus trace SRC DST: whether the configuration lets a flow through, and why.

import type { Command } from 'commander';
import { ConfigView } from '../../config/view.js';
import type { KeyValue } from '../../store/store.js';
import { CliError } from '../client.js';
import { contextOf } from '../context.js';

const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1 };

export function traceCommands(program: Command): void {
  program
    .command('trace <src> <dst>')
    .description('explain from the configuration whether a flow passes: the path (hosts, VNI) and the rule deciding each check')
    .option('--proto <protocol>', 'tcp, udp, icmp or a number', 'icmp')
    .option('--port <n>', 'destination port (tcp, udp)')
    .addHelpText('after', '\nSRC, DST: an interface (port name, DOMAIN:PROJECT:NAME or uuid) or a workload (its VM name, e.g. a lab workload); DST may also be a floating IP address.\nExample: cirrus trace fe1 mg1 --proto tcp --port 514')
    .action(async (srcRef: string, dstRef: string, opts: { proto: string; port?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const protocol = PROTOCOLS[opts.proto.toLowerCase()] ?? (/^\d{1,3}$/.test(opts.proto) && Number(opts.proto) <= 255 ? Number(opts.proto) : undefined);
      if (protocol === undefined) throw new CliError(`--proto: '${opts.proto}' is not tcp, udp, icmp or 0-255`);
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new CliError(`--port: '${opts.port}' is not 0-65535`);
      if (port !== undefined && protocol !== 6 && protocol !== 17) throw new CliError('--port needs --proto tcp or udp');
      const { findEndpoint, findFloating, traceFlow } = await import('../../control/trace.js');
      const snap = await ctx.api.get<{ rev: number; kvs: KeyValue[] }>('/_cirrus/snapshot');
      const view = new ConfigView();
      view.load(snap.kvs, snap.rev);
      const floating = findFloating(view, dstRef);
      if (typeof floating === 'string') throw new CliError(floating);
      const ends = [findEndpoint(view, srcRef), floating?.endpoint ?? findEndpoint(view, dstRef)];
      for (const e of ends) if (typeof e === 'string') throw new CliError(e);
      const [src, dst] = ends as Exclude<(typeof ends)[number], string>[];
      const t = traceFlow(view, src!, dst!, { protocol, ...(port !== undefined ? { port } : {}) }, floating?.backends);
      if (ctx.output === 'json') return console.log(JSON.stringify(t, null, 2));
      const end = (e: typeof src) => `${e!.name} (${e!.address} in ${e!.network.name}${e!.host ? ` on ${e!.host}` : ''})`;
      console.log(`${end(t.src)} → ${end(t.dst)}, ${opts.proto}${port !== undefined ? `/${port}` : ''}`);
      console.log('path:');
      for (const p of t.path) console.log(`  ${p}`);
      if (t.checks.length) console.log('checks, in the order the data plane applies them:');
      for (const c of t.checks) console.log(`  ${c.verdict.padEnd(4)}  ${c.what}: ${c.why} [${c.rule}]`);
      console.log(`verdict: ${t.verdict}${t.verdict === 'pass' ? '' : ' (dropped)'}; ${t.nat ? `NAT: destination ${t.nat.floatingIp} → ${t.nat.backends.map((b) => `${b.address} (${b.name})`).join(', ') || 'nothing'}` : 'no NAT on this path'}`);
    });
}
