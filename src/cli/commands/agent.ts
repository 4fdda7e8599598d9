// cirrus agent: the per-host agent in the foreground.

import os from 'node:os';
import type { Command } from 'commander';
import { CliError } from '../client.js';
import { DEFAULT_CONTROL_PORT } from '../../control/defaults.js';
import { DEFAULT_DNS_SUFFIX, dnsLabel } from '../../agent/services/dns-names.js';
import { DEFAULT_SERVICE_RATE } from '../../agent/services/rate-limit.js';
import { defaultTokenFile } from './control.js';
import type { GatewayConfig } from '../../agent/host-state.js';
import { isValidIfName } from '../../agent/dataplane/names.js';
import { isIpv4 } from '../../util/ipv4.js';

interface AgentCliOptions {
  host: string;
  underlayIp?: string;
  state: string;
  portApi: string;
  portSocket?: string;
  introspect: string;
  introspectSocket?: string;
  resync: string;
  control: string;
  controlTokenFile: string;
  controlCa?: string;
  controlCert?: string;
  controlKey?: string;
  gatewayInterface?: string;
  gatewayNexthop?: string;
  dnsDomain: string;
  serviceRate: string;
  collector?: string;
  flowInterval: string;
}

/** "ws://a:5269,wss://b" → URLs (a bare HOST[:PORT] means ws://HOST:5269). */
export function parseControlUrls(text: string): string[] {
  const urls = text.split(',').map((u) => u.trim()).filter(Boolean).map((u) => (/^wss?:\/\//.test(u) ? u : `ws://${u.includes(':') ? u : `${u}:${DEFAULT_CONTROL_PORT}`}`));
  if (!urls.length) throw new CliError('--control: give at least one control node (ws://HOST:PORT)');
  for (const u of urls) {
    try {
      new URL(u);
    } catch {
      throw new CliError(`--control: '${u}' is not a ws:// or wss:// URL`);
    }
  }
  return urls;
}

/** --gateway-interface and --gateway-nexthop go together. */
export function parseGateway(ifname: string | undefined, nexthop: string | undefined): GatewayConfig | undefined {
  if (ifname === undefined && nexthop === undefined) return undefined;
  if (!ifname || !nexthop) throw new CliError('--gateway-interface and --gateway-nexthop go together');
  if (!isValidIfName(ifname)) throw new CliError(`--gateway-interface: '${ifname}' is not an interface name`);
  if (!isIpv4(nexthop)) throw new CliError(`--gateway-nexthop: '${nexthop}' is not an IPv4 address`);
  return { interface: ifname, nexthop };
}

export function agentCommands(program: Command): void {
  program
    .command('agent')
    .description('run the Cirrus agent of this host (programs the kernel for the ports bound here)')
    .option('--host <name>', "this host's name (its virtual-router)", os.hostname())
    .option('--underlay-ip <address>', 'tunnel endpoint address of this host')
    .option('--state <dir>', 'where port registrations are kept', `${process.env['CIRRUS_DATA'] ?? '/var/lib/cirrus'}/agent`)
    .option('--port-api <addr>', 'port API, HOST:PORT (TF: 127.0.0.1:9091)', '127.0.0.1:9091')
    .option('--port-socket <path>', 'also serve the port API on this unix socket', '/run/cirrus/agent.sock')
    .option('--introspect <addr>', 'introspect HTTP, HOST:PORT (TF: 8085)', '127.0.0.1:8085')
    .option('--introspect-socket <path>', 'also serve introspect on this unix socket (reachable from other namespaces)')
    .option('--resync <seconds>', 'full reconcile period', '10')
    .option('--control <urls>', 'control nodes, comma-separated ws:// or wss:// URLs (the agent keeps two sessions)', `ws://127.0.0.1:${DEFAULT_CONTROL_PORT}`)
    .option('--control-token-file <file>', 'the token control nodes expect', defaultTokenFile())
    .option('--control-ca <file>', 'CA of the control nodes\' certificates (wss://)')
    .option('--control-cert <file>', 'this agent\'s certificate, for control nodes that require one (mTLS)')
    .option('--control-key <file>', 'the certificate\'s key')
    .option('--gateway-interface <ifname>', 'make this host a gateway: the interface towards the outside (external networks\' floating IPs are reached through it, SNAT networks leave through it)')
    .option('--gateway-nexthop <address>', 'the outside router behind --gateway-interface')
    .option('--dns-domain <suffix>', 'DNS suffix of instance names: <vm>.<network>.<project>.<suffix>', DEFAULT_DNS_SUFFIX)
    .option('--service-rate <pps>', 'DHCP and DNS packets per second accepted from each workload interface, per service', String(DEFAULT_SERVICE_RATE))
    .option('--collector <url>', 'ship flow records to this collector: ws://HOST:8081 or unix:/PATH (its socket); it expects the control token')
    .option('--flow-interval <seconds>', 'how often counters of live flows are read', '10')
    .action(async (opts: AgentCliOptions) => {
      const resync = Number(opts.resync);
      if (!(resync >= 1 && resync <= 3600)) throw new CliError(`--resync: '${opts.resync}' is not 1-3600 seconds`);
      const rate = Number(opts.serviceRate);
      if (!(Number.isInteger(rate) && rate >= 1 && rate <= 1_000_000)) throw new CliError(`--service-rate: '${opts.serviceRate}' is not 1-1000000 packets per second`);
      const dnsSuffix = opts.dnsDomain.toLowerCase().replace(/\.$/, '');
      if (!dnsSuffix.split('.').every((l) => dnsLabel(l) !== undefined)) throw new CliError(`--dns-domain: '${opts.dnsDomain}' is not a domain name`);
      const flowInterval = Number(opts.flowInterval);
      if (!(flowInterval >= 1 && flowInterval <= 3600)) throw new CliError(`--flow-interval: '${opts.flowInterval}' is not 1-3600 seconds`);
      if (opts.collector && !/^(wss?:\/\/[^/]+\/?|unix:\/.+)$/.test(opts.collector)) throw new CliError(`--collector: '${opts.collector}' is not ws://HOST:PORT, wss://HOST:PORT or unix:/PATH`);
      const { parseListen } = await import('../../roles/api.js');
      const { startAgent } = await import('../../roles/agent.js');
      const { loadToken, readTls } = await import('../../control/auth.js');
      const urls = parseControlUrls(opts.control);
      const gateway = parseGateway(opts.gatewayInterface, opts.gatewayNexthop);
      let token: string;
      let tls: ReturnType<typeof readTls>;
      try {
        token = loadToken(opts.controlTokenFile, false);
        tls = readTls({ ...(opts.controlCa ? { ca: opts.controlCa } : {}), ...(opts.controlCert ? { cert: opts.controlCert } : {}), ...(opts.controlKey ? { key: opts.controlKey } : {}) });
      } catch (e) {
        throw new CliError(`${(e as Error).message} (--control-token-file, --control-ca, --control-cert, --control-key)`);
      }
      const role = await startAgent({
        host: opts.host,
        ...(opts.underlayIp ? { underlayIp: opts.underlayIp } : {}),
        ...(gateway ? { gateway } : {}),
        control: { urls, token, tls },
        stateDir: opts.state,
        resyncMs: resync * 1000,
        services: { dnsSuffix, rate },
        ...(opts.collector ? { flows: { collector: opts.collector, token, intervalMs: flowInterval * 1000 } } : {}),
        portApi: parseListen(opts.portApi),
        ...(opts.portSocket ? { portSocket: opts.portSocket } : {}),
        introspect: parseListen(opts.introspect),
        ...(opts.introspectSocket ? { introspectSocket: opts.introspectSocket } : {}),
      }).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'EADDRINUSE') throw new CliError(`${e.message}: is another agent running in this namespace?`);
        throw e;
      });
      console.log(`cirrus agent ${opts.host}: port API on ${role.portApiUrl}${opts.portSocket ? ` and ${opts.portSocket}` : ''}, introspect on ${role.introspectUrl}${opts.introspectSocket ? ` and ${opts.introspectSocket}` : ''}, control nodes ${urls.join(', ')}${opts.collector ? `, flows to ${opts.collector}` : ''}`);
      await new Promise<void>((resolve) => {
        const stop = () => void role.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
