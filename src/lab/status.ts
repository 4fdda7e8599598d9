// `lab status`: what the state file says, checked against the system (processes alive,
// namespaces present) and the services' own health.

import { OUTSIDE_IP } from './gateway.js';
import { type Health, agentHealth, apiUrl, collectorHealth, controlHealth, serverHealth } from './health.js';
import { checkLabName, labDir } from './layout.js';
import { netnsExists } from './netns.js';
import { type ProcessRecord, isRunning } from './processes.js';
import { listWorkloads, requireState } from './state.js';

export interface ProcessStatus {
  pid: number | null;
  running: boolean;
  health: string;
  healthy: boolean;
  log: string | null;
}

export interface LabStatus {
  name: string;
  dir: string;
  api: string;
  server: ProcessStatus;
  /** The flow collector's analytics API (absent in labs made before it existed). */
  analytics: string | null;
  collector: ProcessStatus;
  fabric: { netns: string; present: boolean };
  controls: { name: string; netns: string; present: boolean; underlay: string; process: ProcessStatus }[];
  /** h1..hN, then the gateway gw (if any). */
  hosts: { name: string; netns: string; present: boolean; underlay: string; agent: ProcessStatus }[];
  /** The outside namespace behind the gateway (lab up --gateway). */
  outside?: { netns: string; present: boolean; address: string };
  workloads: { name: string; host: string; network: string; status: string; present: boolean; address: string | null; mac: string | null; host_ifname: string | null; vmi_uuid: string | null }[];
}

async function processStatus(rec: ProcessRecord | undefined, marker: string, probe: () => Promise<Health>): Promise<ProcessStatus> {
  const running = isRunning(rec, marker);
  const h = running ? await probe() : { ok: false, status: rec ? 'not running' : 'never started' };
  return { pid: rec?.pid ?? null, running, health: h.status, healthy: h.ok, log: rec?.log ?? null };
}

export async function labStatus(labName: string): Promise<LabStatus> {
  const state = requireState(checkLabName(labName));
  const dir = labDir(state.name);
  const controls = state.controls ?? [];
  const [server, collector, controlStatus, agents] = await Promise.all([
    processStatus(state.server, dir, () => serverHealth(state.apiPort)),
    processStatus(state.collector, dir, () => collectorHealth(state.analyticsPort ?? 0)),
    Promise.all(controls.map((c) => processStatus(c.process, dir, () => controlHealth(state.name, c.name)))),
    Promise.all([...state.hosts, ...(state.gateway ? [state.gateway] : [])].map((h) => processStatus(h.agent, dir, () => agentHealth(state.name, h.name)))),
  ]);
  return {
    name: state.name,
    dir,
    api: apiUrl(state.apiPort),
    server,
    analytics: state.analyticsPort ? apiUrl(state.analyticsPort) : null,
    collector,
    fabric: { netns: state.fabricNetns, present: netnsExists(state.fabricNetns) },
    ...(state.gateway ? { outside: { netns: state.gateway.outsideNetns, present: netnsExists(state.gateway.outsideNetns), address: OUTSIDE_IP } } : {}),
    controls: controls.map((c, i) => ({ name: c.name, netns: c.netns, present: netnsExists(c.netns), underlay: `${c.underlayIp}/${c.prefixLen}`, process: controlStatus[i]! })),
    hosts: [...state.hosts, ...(state.gateway ? [state.gateway] : [])].map((h, i) => ({ name: h.name, netns: h.netns, present: netnsExists(h.netns), underlay: `${h.underlayIp}/${h.prefixLen}`, agent: agents[i]! })),
    workloads: listWorkloads(state.name).map((w) => ({
      name: w.name,
      host: w.host,
      network: w.network,
      status: w.status,
      present: netnsExists(w.name),
      address: w.address ? `${w.address}/${w.prefixLen}` : null,
      mac: w.mac ?? null,
      host_ifname: w.hostIf ?? null,
      vmi_uuid: w.vmiUuid ?? null,
    })),
  };
}
