// Is the lab's server answering, and is each agent? The server is asked on its TCP port
// (what users reach from the root namespace); an agent, whose ports listen on 127.0.0.1
// inside its host's namespace, through its port API and introspect sockets.

import { HttpError, requestJson } from '../util/http-client.js';
import { agentSocket, controlSocket, introspectSocket } from './layout.js';

export interface Health {
  ok: boolean;
  /** "ok", the service's own status word, or why it did not answer. */
  status: string;
}

const PROBE_TIMEOUT_MS = 2_000;

export const apiUrl = (port: number): string => `http://127.0.0.1:${port}`;

/** GET /healthz: its `status` word, also from an error answer (503 "waiting for configuration"). */
async function healthz(base: string): Promise<Health> {
  try {
    const r = await requestJson<{ status?: string }>(base, 'GET', '/healthz', undefined, PROBE_TIMEOUT_MS);
    return { ok: r?.status === 'ok', status: r?.status ?? 'no status' };
  } catch (e) {
    if (e instanceof HttpError) return { ok: false, status: (e.body as { status?: string } | undefined)?.status ?? `HTTP ${e.status}` };
    return { ok: false, status: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

export const serverHealth = (port: number): Promise<Health> => healthz(apiUrl(port));
export const collectorHealth = (port: number): Promise<Health> => healthz(apiUrl(port));

/**
 * Healthy when the port API answers as that host and introspect says "ok": the agent has
 * its configuration and follows the server's changes ("headless" means it forwards on a
 * configuration it no longer hears about).
 */
export async function agentHealth(lab: string, host: string): Promise<Health> {
  try {
    const ports = await requestJson<{ host?: string }>(`unix:${agentSocket(lab, host)}`, 'GET', '/ports', undefined, PROBE_TIMEOUT_MS);
    if (ports?.host !== host) return { ok: false, status: `port API answers as '${ports?.host}'` };
  } catch (e) {
    return { ok: false, status: `port API: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  return healthz(`unix:${introspectSocket(lab, host)}`);
}

/** A control node answers on its socket and has the configuration. */
export const controlHealth = (lab: string, node: string): Promise<Health> => healthz(`unix:${controlSocket(lab, node)}`);
