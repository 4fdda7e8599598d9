// Workloads: namespaces attached through a host's agent by the same code as
// `cirrus netns attach` / `detach`, against the lab's API, and recorded in the lab.

import { isValidNetns } from '../agent/dataplane/names.js';
import { cidrContains, parseCidr, parseIpv4 } from '../util/ipv4.js';
import { ApiClient, CliError } from '../cli/client.js';
import { attach, detach } from '../cli/commands/netns.js';
import type { CliContext } from '../cli/context.js';
import { apiUrl } from './health.js';
import { WORKLOAD_IF, agentSocket, checkLabName, hostIndex, nameFlag } from './layout.js';
import { removeProgramFiles, startProgram, stopProgram } from './programs.js';
import { deleteNetns, netnsExists } from './netns.js';
import { removeNetnsEtc, writeResolvConf } from './netns-etc.js';
import { type LabState, type WorkloadRecord, claimWorkload, forgetWorkload, readWorkload, requireState, updateWorkload } from './state.js';

/** The CLI context with the lab's API in place of $CIRRUS_API. */
export function labContext(ctx: CliContext, state: LabState): CliContext {
  return { ...ctx, api: new ApiClient(apiUrl(state.apiPort), `lab ${state.name}'s API`, `is the lab up? (cirrus lab status${nameFlag(state.name)})`) };
}

function agentOf(state: LabState, host: string): ApiClient {
  return new ApiClient(`unix:${agentSocket(state.name, host)}`, `the agent of ${host}`, `'cirrus lab up${nameFlag(state.name)}' restarts it`);
}

export interface AddWorkload {
  name: string;
  host: string;
  network: string;
  ip?: string;
  /** Marks for its virtual-machine and port (topology files record their ownership so). */
  annotations?: { key: string; value: string }[];
  /** A program to keep running in it. */
  command?: string[];
  /** Link only: the workload's own DHCP client configures the address. */
  dhcp?: boolean;
}

export async function addWorkload(ctx: CliContext, labName: string, req: AddWorkload): Promise<WorkloadRecord> {
  const state = requireState(checkLabName(labName));
  const lab = state.name;
  if (!state.hosts.some((h) => h.name === req.host)) throw new CliError(`--host: lab '${lab}' has no host '${req.host}' (it has ${state.hosts.map((h) => h.name).join(', ')})`);
  // The record's file is named after the workload: validate before it touches the file system.
  if (!isValidNetns(req.name) || req.name.startsWith('/')) throw new CliError(`'${req.name}' is not a namespace name (letters, digits, _ . -)`);
  if (hostIndex(req.name) !== undefined || req.name.startsWith(`${lab}-`)) throw new CliError(`'${req.name}' is a name of the lab's hosts or namespaces; choose another workload name`);
  const existing = readWorkload(lab, req.name);
  if (existing) throw new CliError(`lab '${lab}' already has workload ${req.name} (on ${existing.host}, network ${existing.network})`);
  if (netnsExists(req.name)) throw new CliError(`namespace ${req.name} exists and is not a workload of lab '${lab}'; choose another name`);
  const rec: WorkloadRecord = { name: req.name, host: req.host, network: req.network, status: 'adding', createdAt: new Date().toISOString(), ...(req.dhcp ? { dhcp: true } : {}) };
  if (!claimWorkload(lab, rec)) throw new CliError(`lab '${lab}' already has workload ${req.name}`);
  let port: Record<string, unknown>;
  try {
    const labCtx = labContext(ctx, state);
    port = await attach(labCtx, agentOf(state, req.host), {
      netns: req.name,
      network: req.network,
      ifname: WORKLOAD_IF,
      ...(req.ip ? { ip: req.ip } : {}),
      ...(req.dhcp ? { dhcp: true } : {}),
      ...(req.annotations ? { annotations: req.annotations } : {}),
    });
    writeResolvConf(req.name, await dnsAddressOf(labCtx, String(port['network']), String(port['address'])));
  } catch (e) {
    removeNetnsEtc(req.name);
    forgetWorkload(lab, req.name); // attach undid its own work
    throw e;
  }
  const done: WorkloadRecord = {
    ...rec,
    status: 'attached',
    vmiUuid: String(port['vmi_uuid']),
    hostIf: String(port['host_ifname']),
    address: String(port['address']),
    prefixLen: Number(port['prefix_len']),
    mac: String(port['mac']),
  };
  updateWorkload(lab, done);
  return req.command?.length ? setWorkloadCommand(lab, req.name, req.command) : done;
}

/** Stops the workload's program, if it runs, and starts `command` (none: nothing). */
export async function setWorkloadCommand(lab: string, name: string, command: string[]): Promise<WorkloadRecord> {
  const rec = readWorkload(lab, name);
  if (!rec) throw new CliError(`lab '${lab}' has no workload ${name}`);
  await stopProgram(name, rec.process);
  const { process: _stopped, command: _old, ...rest } = rec;
  const next: WorkloadRecord = rest;
  if (command.length) {
    next.command = command;
    next.process = startProgram(lab, name, command);
  }
  updateWorkload(lab, next);
  return next;
}

export async function delWorkload(ctx: CliContext, labName: string, name: string): Promise<WorkloadRecord> {
  const state = requireState(checkLabName(labName));
  const rec = readWorkload(state.name, name);
  if (!rec) throw new CliError(`lab '${state.name}' has no workload ${name}`);
  await stopProgram(name, rec.process);
  try {
    await detach(labContext(ctx, state), agentOf(state, rec.host), name);
  } catch (e) {
    // A record still "adding" is the trace of an interrupted add: there may be nothing to detach.
    if (!(rec.status === 'adding' && e instanceof CliError && /is not attached/.test(e.message))) throw e;
  }
  // The lab made the namespace (add refuses existing ones): it goes even if detach did not remove it.
  await deleteNetns(name);
  removeProgramFiles(state.name, name);
  removeNetnsEtc(name);
  forgetWorkload(state.name, name);
  return rec;
}

/** The DNS address of the network's subnet holding `address` (none: the subnet has none). */
async function dnsAddressOf(ctx: CliContext, network: string, address: string): Promise<string | undefined> {
  const vn = await ctx.api.read('virtual-network', network);
  const ip = parseIpv4(address);
  for (const ref of (vn['network_ipam_refs'] ?? []) as { attr?: { ipam_subnets?: Record<string, unknown>[] } }[]) {
    for (const s of ref.attr?.ipam_subnets ?? []) {
      const sn = s['subnet'] as { ip_prefix: string; ip_prefix_len: number };
      const cidr = parseCidr(`${sn.ip_prefix}/${sn.ip_prefix_len}`);
      const dns = s['dns_server_address'];
      if (ip !== undefined && typeof cidr !== 'string' && cidrContains(cidr, ip) && typeof dns === 'string' && dns !== '0.0.0.0') return dns;
    }
  }
  return undefined;
}
