// Where a lab lives and what its parts are called. Everything a lab makes is named from
// the lab's name, so that `lab down` finds it again even without the state file.

import path from 'node:path';
import { CliError } from '../cli/client.js';

export const DEFAULT_LAB = 'cirrus';
export const DEFAULT_LAB_API_PORT = 8082;
export const DEFAULT_LAB_ANALYTICS_PORT = 8081;
export const MAX_HOSTS = 64;

/**
 * Labs live under /run: the state goes away at reboot together with the namespaces and
 * processes it describes. Unix socket paths must stay under 108 bytes, hence the short
 * names.
 */
export const LAB_ROOT = '/run/cirrus/lab';

/** Lower-case letters and digits, so that "<lab>-" never is the prefix of another lab's names. */
const LAB_NAME = /^[a-z][a-z0-9]{0,11}$/;

export function checkLabName(name: string): string {
  if (!LAB_NAME.test(name)) throw new CliError(`--name: '${name}' is not a lab name (a lower-case letter, then up to 11 lower-case letters or digits)`);
  return name;
}

export const labDir = (lab: string): string => path.join(LAB_ROOT, lab);
export const stateFile = (lab: string): string => path.join(labDir(lab), 'lab.json');
export const workloadsDir = (lab: string): string => path.join(labDir(lab), 'workloads');
export const serverDir = (lab: string): string => path.join(labDir(lab), 'server');
/** A workload's program runs in a directory of its own (empty: an HTTP server started there shows nothing else), its output in a log beside it. */
export const workloadRunDir = (lab: string, workload: string): string => path.join(labDir(lab), 'run', workload);
export const workloadLog = (lab: string, workload: string): string => path.join(labDir(lab), 'run', `${workload}.log`);
export const apiSocket = (lab: string): string => path.join(labDir(lab), 'api.sock');
export const hostDir = (lab: string, host: string): string => path.join(labDir(lab), host);
export const agentSocket = (lab: string, host: string): string => path.join(hostDir(lab, host), 'agent.sock');
export const introspectSocket = (lab: string, host: string): string => path.join(hostDir(lab, host), 'introspect.sock');

export const serverLog = (lab: string): string => path.join(labDir(lab), 'server.log');
/** The flow collector: its store, its socket (agents in host namespaces ship flows through it) and log. */
export const analyticsDir = (lab: string): string => path.join(labDir(lab), 'analytics');
export const collectorSocket = (lab: string): string => path.join(labDir(lab), 'collector.sock');
export const collectorLog = (lab: string): string => path.join(labDir(lab), 'collector.log');
/** The token agents present to the lab's control nodes. */
export const controlToken = (lab: string): string => path.join(labDir(lab), 'control.token');
export const controlSocket = (lab: string, node: string): string => path.join(hostDir(lab, node), 'control.sock');
export const controlLog = (lab: string, node: string): string => path.join(hostDir(lab, node), 'control.log');
export const agentLog = (lab: string, host: string): string => path.join(hostDir(lab, host), 'agent.log');

/** " --name LAB" for the commands the lab suggests, empty for the default lab. */
export const nameFlag = (lab: string): string => (lab === DEFAULT_LAB ? '' : ` --name ${lab}`);

export const hostName = (k: number): string => `h${k}`;
/** Control nodes c1, c2 (agents keep a session with each), each in a namespace on the underlay. */
export const CONTROL_NODES = 2;
export const controlName = (k: number): string => `c${k}`;
export const fabricNetns = (lab: string): string => `${lab}-fabric`;
export const hostNetns = (lab: string, host: string): string => `${lab}-${host}`;

/** Host names are h1..hN; anything else is not a host. */
export function hostIndex(name: string): number | undefined {
  const m = /^h([1-9]\d*)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The namespaces of lab `lab` by name alone (for a clean-up without state). */
export function isLabNetns(lab: string, netns: string): boolean {
  if (!netns.startsWith(`${lab}-`)) return false;
  const rest = netns.slice(lab.length + 1);
  return rest === 'fabric' || rest === 'gw' || rest === 'outside' || hostIndex(rest) !== undefined || /^c[1-9]$/.test(rest);
}

/**
 * The underlay: the hosts' `eth0`s on a bridge in the fabric namespace, 10.254.0.K/24 for
 * host hK. It exists only inside the lab's namespaces, so every lab uses the same range.
 */
export const UNDERLAY_PREFIX_LEN = 24;
export const underlayIp = (k: number): string => `10.254.0.${k}`;
/** Control node cK's underlay address (above the hosts' range). */
export const controlIp = (k: number): string => `10.254.0.${200 + k}`;
/** The host's underlay interface, and the bridge port facing it in the fabric namespace (named after the host). */
export const HOST_UPLINK = 'eth0';
/** The interface every workload gets, and the name of its port in the API. */
export const WORKLOAD_IF = 'eth0';
export const workloadPortName = (workload: string): string => `${workload}-${WORKLOAD_IF}`;
export const FABRIC_BRIDGE = 'br0';
