// cirrus collector (the role), cirrus flows and cirrus top: flow analytics from the command line.

import type { Command } from 'commander';
import { ApiClient, CliError } from '../client.js';
import { contextOf } from '../context.js';
import { ownedFqName } from '../names.js';
import { emit, printTable } from '../output.js';
import { defaultTokenFile } from './control.js';
import { DEFAULT_DATA_DIR } from './server.js';

const DEFAULT_ANALYTICS = 'http://127.0.0.1:8081';

/** "10m" → ms. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new CliError(`${what}: '${text}' is not N(s|m|h|d), e.g. 10m`);
  return Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's']!;
}

/** "10G", "500M", "1048576" → bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+)([KMGT]?)$/i.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new CliError(`${what}: '${text}' is not a size such as 500M or 10G`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
}

function analyticsClient(cmd: Command): ApiClient {
  const o = cmd.optsWithGlobals<{ analytics?: string }>();
  const base = (o.analytics ?? process.env['CIRRUS_ANALYTICS'] ?? DEFAULT_ANALYTICS).replace(/\/+$/, '');
  return new ApiClient(base, 'the Cirrus analytics', "is 'cirrus up' (or 'cirrus collector') running? (--analytics or CIRRUS_ANALYTICS point elsewhere)");
}

const analyticsOption = (c: Command): Command => c.option('--analytics <url>', `analytics API URL (default: $CIRRUS_ANALYTICS or ${DEFAULT_ANALYTICS})`);

type Row = Record<string, unknown>;
const query = async (api: ApiClient, body: object): Promise<Row[]> => (await api.post<{ value: Row[] }>('/analytics/query', body)).value;

const time = (us: unknown) => (typeof us === 'number' ? new Date(us / 1000).toISOString().replace('T', ' ').slice(0, 19) : null);
const PROTOCOLS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };

export function analyticsCommands(program: Command): void {
  program
    .command('collector')
    .description('run the flow collector: agents ship flow records to it; it stores them and serves the analytics API (TF: port 8081)')
    .option('--data <dir>', 'where the flow store lives', `${process.env['CIRRUS_DATA'] ?? DEFAULT_DATA_DIR}/analytics`)
    .option('--listen <addr>', 'analytics API and agents\' flow channel, HOST:PORT', '0.0.0.0:8081')
    .option('--socket <path>', 'also serve both on this unix socket (agents in other network namespaces)')
    .option('--token-file <file>', 'the token agents present (the control nodes\' one; created when missing)', defaultTokenFile())
    .option('--retention-age <duration>', 'keep flow records this long (s, m, h, d)', '7d')
    .option('--retention-size <size>', 'and let them take at most this much disk (K, M, G, T)', '10G')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'warn')
    .action(async (opts: { data: string; listen: string; socket?: string; tokenFile: string; retentionAge: string; retentionSize: string; logLevel: string }) => {
      const retention = { maxAgeMs: parseDuration(opts.retentionAge, '--retention-age'), maxBytes: parseSize(opts.retentionSize, '--retention-size') };
      const { parseListen } = await import('../../roles/api.js');
      const { startCollector } = await import('../../roles/collector.js');
      let listen;
      try {
        listen = parseListen(opts.listen, '0.0.0.0');
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      const role = await startCollector({ dataDir: opts.data, listen, tokenFile: opts.tokenFile, retention, logLevel: opts.logLevel, ...(opts.socket ? { socket: opts.socket } : {}) }).catch((e: NodeJS.ErrnoException) => {
        throw new CliError(e.code === 'EADDRINUSE' ? `${e.message}: is another collector running here? (--listen)` : e.message);
      });
      console.log(`cirrus collector: analytics API and flow channel on ${role.url}${opts.socket ? ` and ${opts.socket}` : ''}, flow store in ${opts.data} (retention ${opts.retentionAge}, ${opts.retentionSize})`);
      await new Promise<void>((resolve) => {
        const stop = () => void role.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  analyticsOption(
    program
      .command('flows')
      .description('recent flows (FlowRecordTable): who talked to whom, how much, and what decided')
      .option('--network <net>', 'flows from or to this network (NAME or DOMAIN:PROJECT:NAME)')
      .option('--since <duration>', 'how far back (s, m, h, d)', '10m')
      .option('--denied', 'only denied attempts')
      .option('--limit <n>', 'at most this many (newest first)', '50'),
  ).action(async (opts: { network?: string; since: string; denied?: boolean; limit: string }, cmd: Command) => {
    const ctx = contextOf(cmd);
    parseDuration(opts.since, '--since');
    const limit = Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit: '${opts.limit}' is not a positive number`);
    const and: Row[] = [];
    if (opts.denied) and.push({ name: 'action', value: 'deny', op: 1 });
    const vn = opts.network ? ownedFqName(opts.network, ctx.project).join(':') : undefined;
    const where = vn ? [[...and, { name: 'sourcevn', value: vn, op: 1 }], [...and, { name: 'destvn', value: vn, op: 1 }]] : and.length ? [and] : undefined;
    const fields = ['setup_time', 'teardown_time', 'vrouter', 'direction_ing', 'sourcevn', 'sourceip', 'sport', 'destvn', 'destip', 'dport', 'protocol', 'action', 'bytes', 'packets', 'reverse_bytes', 'reverse_packets', 'nw_ace_uuid', 'sg_rule_uuid', 'nat_sourceip', 'nat_destip', 'flowuuid'];
    const rows = await query(analyticsClient(cmd), { table: 'FlowRecordTable', start_time: `now-${opts.since}`, end_time: 'now', select_fields: fields, ...(where ? { where } : {}), sort: 2, sort_fields: ['setup_time'], limit });
    if (ctx.output === 'json') return emit('json', rows, [], []);
    printTable(
      rows.map((r) => ({
        setup: time(r['setup_time']),
        host: `${r['vrouter']}${r['direction_ing'] ? '' : '(in)'}`,
        source: `${r['sourcevn']} ${r['sourceip']}:${r['sport']}`,
        destination: `${r['destvn']} ${r['destip']}${r['nat_destip'] ? `(${r['nat_destip']})` : ''}:${r['dport']}`,
        proto: PROTOCOLS[r['protocol'] as number] ?? r['protocol'],
        action: r['action'],
        bytes: `${r['bytes']}/${r['reverse_bytes']}`,
        rule: r['nw_ace_uuid'] ?? r['sg_rule_uuid'],
        state: r['teardown_time'] ? 'closed' : 'live',
      })),
      ['setup', 'host', 'source', 'destination', 'proto', 'action', 'bytes', 'rule', 'state'],
    );
  });

  analyticsOption(
    program
      .command('top <what>')
      .description("top talkers (source addresses) or ports (destination ports) by bytes: 'talkers' or 'ports'")
      .option('--since <duration>', 'how far back (s, m, h, d)', '1h')
      .option('--limit <n>', 'how many', '10'),
  ).action(async (what: string, opts: { since: string; limit: string }, cmd: Command) => {
    const ctx = contextOf(cmd);
    if (what !== 'talkers' && what !== 'ports') throw new CliError(`top: '${what}' is not talkers or ports`);
    parseDuration(opts.since, '--since');
    const limit = Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit: '${opts.limit}' is not a positive number`);
    const keys = what === 'talkers' ? ['sourcevn', 'sourceip'] : ['protocol', 'dport'];
    // Each flow once: as recorded where it entered from its source.
    const rows = await query(analyticsClient(cmd), {
      table: 'FlowSeriesTable',
      start_time: `now-${opts.since}`,
      end_time: 'now',
      select_fields: [...keys, 'sum(bytes)', 'sum(reverse_bytes)', 'sum(packets)', 'flow_count'],
      where: [[{ name: 'direction_ing', value: 1, op: 1 }]],
      sort: 2,
      sort_fields: ['sum(bytes)'],
      limit,
    });
    if (ctx.output === 'json') return emit('json', rows, [], []);
    printTable(
      rows.map((r) => ({ ...r, protocol: PROTOCOLS[r['protocol'] as number] ?? r['protocol'], bytes: r['sum(bytes)'], reply_bytes: r['sum(reverse_bytes)'], packets: r['sum(packets)'], flows: r['flow_count'] })),
      [...keys, 'bytes', 'reply_bytes', 'packets', 'flows'],
    );
  });
}
