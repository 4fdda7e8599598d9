// `lab up`: the underlay, the config API in the root namespace (127.0.0.1:PORT and a unix
// socket), two control nodes in namespaces of their own on the underlay (following the API
// through its socket), and one agent per host namespace with sessions to both control nodes
// over the underlay, as in a real deployment. Whatever exists and runs is kept, so running
// it again repairs or grows a lab.

import fs from 'node:fs';
import net from 'node:net';
import { CliError } from '../cli/client.js';
import { DeadlineError, pollUntil } from '../util/poll.js';
import { loadToken } from '../control/auth.js';
import { DEFAULT_CONTROL_PORT } from '../control/defaults.js';
import { type Health, agentHealth, collectorHealth, controlHealth, serverHealth } from './health.js';
import {
  CONTROL_NODES,
  DEFAULT_LAB_ANALYTICS_PORT,
  DEFAULT_LAB_API_PORT,
  MAX_HOSTS,
  UNDERLAY_PREFIX_LEN,
  agentLog,
  agentSocket,
  analyticsDir,
  apiSocket,
  checkLabName,
  collectorLog,
  collectorSocket,
  controlIp,
  controlLog,
  controlName,
  controlSocket,
  controlToken,
  fabricNetns,
  hostDir,
  hostName,
  hostNetns,
  introspectSocket,
  labDir,
  nameFlag,
  serverDir,
  serverLog,
  underlayIp,
} from './layout.js';
import { ensureUnderlay, inNetns } from './netns.js';
import { GATEWAY_HOST, GATEWAY_OUTSIDE_IF, GATEWAY_OUTSIDE_IP, GATEWAY_UNDERLAY_IP, OUTSIDE_IP, ensureOutside, gatewayAgentArgs, outsideNetns } from './gateway.js';
import { AGENT_GRACE_MS, CIRRUS_BIN, type ProcessRecord, isRunning, logTail, spawnDetached, stopProcess } from './processes.js';
import { type ControlRecord, type LabState, readState, withLabLock, writeState } from './state.js';

export interface UpOptions {
  name: string;
  hosts: number;
  apiPort?: number;
  /** Also a gateway host and the outside namespace. */
  gateway?: boolean;
  analyticsPort?: number;
}

export type Say = (line: string) => void;

/** How long the server and the agents get to answer. */
const READY_TIMEOUT_MS = 30_000;

export async function labUp(opts: UpOptions, say: Say): Promise<LabState> {
  const lab = checkLabName(opts.name);
  if (!(Number.isInteger(opts.hosts) && opts.hosts >= 1 && opts.hosts <= MAX_HOSTS)) throw new CliError(`--hosts: '${opts.hosts}' is not 1-${MAX_HOSTS}`);
  if (opts.apiPort !== undefined && !(Number.isInteger(opts.apiPort) && opts.apiPort >= 1 && opts.apiPort <= 65535)) {
    throw new CliError(`--api-port: '${opts.apiPort}' is not 1-65535`);
  }
  if (opts.analyticsPort !== undefined && !(Number.isInteger(opts.analyticsPort) && opts.analyticsPort >= 1 && opts.analyticsPort <= 65535)) {
    throw new CliError(`--analytics-port: '${opts.analyticsPort}' is not 1-65535`);
  }
  return withLabLock(lab, async () => {
    const marker = labDir(lab);
    const previous = readState(lab);
    if (previous && previous.hosts.length > opts.hosts) {
      throw new CliError(`lab '${lab}' has ${previous.hosts.length} hosts; 'cirrus lab down${nameFlag(lab)}' first to rebuild it with ${opts.hosts}`);
    }
    if (previous && opts.apiPort !== undefined && opts.apiPort !== previous.apiPort && isRunning(previous.server, marker)) {
      throw new CliError(`lab '${lab}' serves its API on port ${previous.apiPort}; 'cirrus lab down${nameFlag(lab)}' first to move it to ${opts.apiPort}`);
    }
    const state: LabState = previous ?? { name: lab, apiPort: DEFAULT_LAB_API_PORT, createdAt: new Date().toISOString(), fabricNetns: fabricNetns(lab), hosts: [] };
    state.apiPort = opts.apiPort ?? state.apiPort;
    if (previous && opts.analyticsPort !== undefined && opts.analyticsPort !== previous.analyticsPort && isRunning(previous.collector, marker)) {
      throw new CliError(`lab '${lab}' serves analytics on port ${previous.analyticsPort}; 'cirrus lab down${nameFlag(lab)}' first to move it to ${opts.analyticsPort}`);
    }
    state.analyticsPort = opts.analyticsPort ?? state.analyticsPort ?? DEFAULT_LAB_ANALYTICS_PORT;
    for (let k = state.hosts.length + 1; k <= opts.hosts; k++) {
      state.hosts.push({ name: hostName(k), netns: hostNetns(lab, hostName(k)), underlayIp: underlayIp(k), prefixLen: UNDERLAY_PREFIX_LEN });
    }
    // Whoever answers there (another lab's server?) would pass for ours.
    if (!isRunning(state.server, marker) && (await portAnswers(state.apiPort))) throw new CliError(`127.0.0.1:${state.apiPort} is in use; choose another --api-port`);
    if (!isRunning(state.collector, marker) && (await portAnswers(state.analyticsPort))) throw new CliError(`127.0.0.1:${state.analyticsPort} is in use; choose another --analytics-port`);
    say(previous ? `lab ${lab}: reusing what exists in ${marker}` : `lab ${lab}: building in ${marker}`);
    // Recorded before anything is made: `lab down` finds a half-built lab after a crash.
    writeState(state);

    state.controls ??= [];
    for (let k = state.controls.length + 1; k <= CONTROL_NODES; k++) {
      state.controls.push({ name: controlName(k), netns: hostNetns(lab, controlName(k)), underlayIp: controlIp(k), prefixLen: UNDERLAY_PREFIX_LEN });
    }
    if (opts.gateway && !state.gateway) {
      state.gateway = { name: GATEWAY_HOST, netns: hostNetns(lab, GATEWAY_HOST), underlayIp: GATEWAY_UNDERLAY_IP, prefixLen: UNDERLAY_PREFIX_LEN, outsideNetns: outsideNetns(lab) };
    }
    writeState(state);
    const agentHosts = [...state.hosts, ...(state.gateway ? [state.gateway] : [])];
    await ensureUnderlay(state.fabricNetns, [...agentHosts, ...state.controls]);
    say(`  underlay: bridge in ${state.fabricNetns}, ${[...agentHosts, ...state.controls].map((h) => `${h.name} ${h.underlayIp}`).join(', ')}`);
    if (state.gateway) {
      await ensureOutside(lab, state.gateway.netns);
      say(`  outside: ${state.gateway.outsideNetns} (${OUTSIDE_IP}) behind the gateway ${GATEWAY_HOST} (${GATEWAY_OUTSIDE_IF} ${GATEWAY_OUTSIDE_IP})`);
    }

    fs.mkdirSync(serverDir(lab), { recursive: true });
    if (!isRunning(state.server, marker)) {
      const args = [CIRRUS_BIN, 'api', '--data', serverDir(lab), '--listen', `127.0.0.1:${state.apiPort}`, '--socket', apiSocket(lab)];
      state.server = spawnDetached(process.execPath, args, serverLog(lab));
      writeState(state);
      say(`  server: started (pid ${state.server.pid})`);
    } else say(`  server: running (pid ${state.server.pid})`);
    await waitReady('server', state.server, marker, () => serverHealth(state.apiPort));
    say(`  server: API on http://127.0.0.1:${state.apiPort} and ${apiSocket(lab)}`);

    loadToken(controlToken(lab), true);
    await startCollector(state, marker, say);
    for (const c of state.controls) await startControl(state, c, marker, say);
    await Promise.all(
      state.controls.map(async (c) => {
        await waitReady(`control node ${c.name}`, c.process, marker, () => controlHealth(lab, c.name));
        say(`  control node ${c.name}: agents on ws://${c.underlayIp}:${DEFAULT_CONTROL_PORT}`);
      }),
    );
    const controls = state.controls.map((c) => `ws://${c.underlayIp}:${DEFAULT_CONTROL_PORT}`).join(',');

    for (const h of agentHosts) {
      if (isRunning(h.agent, marker)) {
        if (inNetns(h.agent.pid, h.netns)) {
          say(`  agent ${h.name}: running in ${h.netns} (pid ${h.agent.pid})`);
          continue;
        }
        // Its namespace was deleted and made anew: the agent still programs the old one.
        say(`  agent ${h.name}: runs in a namespace that is no longer ${h.netns}; restarting it`);
        await stopProcess(h.agent, marker, AGENT_GRACE_MS);
      }
      fs.mkdirSync(hostDir(lab, h.name), { recursive: true });
      const agent = [
        CIRRUS_BIN, 'agent', '--host', h.name, '--underlay-ip', h.underlayIp, '--state', hostDir(lab, h.name), '--control', controls, '--control-token-file', controlToken(lab),
        '--port-socket', agentSocket(lab, h.name), '--introspect-socket', introspectSocket(lab, h.name),
        ...(h === state.gateway ? gatewayAgentArgs() : []),
        '--collector', `unix:${collectorSocket(lab)}`, '--flow-interval', String(LAB_FLOW_INTERVAL_S),
      ];
      h.agent = spawnDetached('ip', ['netns', 'exec', h.netns, process.execPath, ...agent], agentLog(lab, h.name));
      writeState(state);
      say(`  agent ${h.name}: started in ${h.netns} (pid ${h.agent.pid})`);
    }
    await Promise.all(
      agentHosts.map(async (h) => {
        await waitReady(`agent ${h.name}`, h.agent, marker, () => agentHealth(lab, h.name));
        say(`  agent ${h.name}: ready`);
      }),
    );
    return state;
  });
}

/** Counters of live flows are read this often in a lab (agents default to 10 s): quick to show in a demo and a test. */
const LAB_FLOW_INTERVAL_S = 2;

/** Starts the flow collector in the root namespace (127.0.0.1 and a socket agents reach) unless it runs. */
async function startCollector(state: LabState, marker: string, say: Say): Promise<void> {
  const lab = state.name;
  const port = state.analyticsPort!;
  if (isRunning(state.collector, marker)) say(`  collector: running (pid ${state.collector.pid})`);
  else {
    const args = [
      CIRRUS_BIN, 'collector', '--data', analyticsDir(lab), '--listen', `127.0.0.1:${port}`, '--socket', collectorSocket(lab), '--token-file', controlToken(lab),
      '--retention-age', '1d', '--retention-size', '1G',
    ];
    state.collector = spawnDetached(process.execPath, args, collectorLog(lab));
    writeState(state);
    say(`  collector: started (pid ${state.collector.pid})`);
  }
  await waitReady('collector', state.collector, marker, () => collectorHealth(port));
  say(`  collector: analytics API on http://127.0.0.1:${port}, flows from agents through ${collectorSocket(lab)}`);
}

/** Starts control node `c` in its namespace unless it runs there already. */
async function startControl(state: LabState, c: ControlRecord, marker: string, say: Say): Promise<void> {
  const lab = state.name;
  if (isRunning(c.process, marker)) {
    if (inNetns(c.process.pid, c.netns)) return say(`  control node ${c.name}: running in ${c.netns} (pid ${c.process.pid})`);
    await stopProcess(c.process, marker, AGENT_GRACE_MS);
  }
  fs.mkdirSync(hostDir(lab, c.name), { recursive: true });
  const args = [
    CIRRUS_BIN, '--api', `unix:${apiSocket(lab)}`, 'control', '--name', c.name, '--listen', `0.0.0.0:${DEFAULT_CONTROL_PORT}`,
    '--token-file', controlToken(lab), '--socket', controlSocket(lab, c.name),
  ];
  c.process = spawnDetached('ip', ['netns', 'exec', c.netns, process.execPath, ...args], controlLog(lab, c.name));
  writeState(state);
  say(`  control node ${c.name}: started in ${c.netns} (pid ${c.process.pid})`);
}

/** Polls `probe` until healthy; fails early, with its log, if the process exits. */
async function waitReady(what: string, rec: ProcessRecord | undefined, marker: string, probe: () => Promise<Health>): Promise<void> {
  let last = 'not probed';
  const failure = (why: string) =>
    new CliError(`${what} ${why} ('cirrus lab up' again retries, 'cirrus lab down' removes the lab); the end of ${rec?.log ?? 'its log'}:\n${rec ? logTail(rec.log) : ''}`);
  try {
    await pollUntil(
      `${what} to answer`,
      async () => {
        if (!isRunning(rec, marker)) throw failure('exited');
        const h = await probe();
        last = h.status;
        return h.ok ? true : undefined;
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 },
    );
  } catch (e) {
    if (e instanceof DeadlineError) throw failure(`did not become ready within ${READY_TIMEOUT_MS / 1000} s (last: ${last})`);
    throw e;
  }
}

/** Whether something accepts connections on 127.0.0.1:port. */
function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const answer = (inUse: boolean) => {
      socket.destroy();
      resolve(inUse);
    };
    socket.setTimeout(1_000);
    socket.once('connect', () => answer(true));
    socket.once('timeout', () => answer(true)); // something took the port and does not answer
    socket.once('error', () => answer(false));
  });
}
