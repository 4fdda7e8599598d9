// Large network policies for the benchmarks (bench/policy.ts, bench/report.ts): the filler
// rules, their creation through the API, and checks that a lab's agents and kernels hold
// them.

import http from 'node:http';
import { run } from '../../src/agent/dataplane/kernel.js';
import { aclChain } from '../../src/agent/dataplane/nft.js';
import type { NetworkState } from '../../src/agent/host-state.js';
import type { AclRule } from '../../src/control/protocol.js';
import type { PolicyRule } from '../../src/cli/rule-syntax.js';
import { hostNetns, introspectSocket } from '../../src/lab/layout.js';
import { type JsonClient, expectOk } from './http.js';

/**
 * Filler rule i: `pass|deny tcp NETWORK > 172.16.X.Y/32 PORT`, PORT 20000 and up: never a
 * benchmark's flow. Runs of such rules differ in single values: the agent compiles them
 * into one verdict map per side (a "rule map").
 */
export const fillerRuleText = (i: number, network: string, action: 'pass' | 'deny'): string => `${action} tcp ${network} > 172.16.${(i >> 8) & 255}.${i & 255}/32 ${20_000 + (i % 40_000)}`;

/** The API takes at most 1 MiB per request: a policy of more rules than ~3,000 is refused. */
export async function createPolicy(api: JsonClient, project: string[], name: string, rules: PolicyRule[]): Promise<string> {
  const body = { 'network-policy': { fq_name: [...project, name], parent_type: 'project', network_policy_entries: { policy_rule: rules } } };
  const size = JSON.stringify(body).length;
  if (size > 1_000_000) throw new Error(`policy ${name}: ${size} bytes, over the API's 1 MiB body limit: fewer rules per policy`);
  return expectOk(`create policy ${name}`, await api.request('POST', '/network-policys', body))['network-policy'].uuid as string;
}

/** GET on a lab agent's introspect, through its unix socket. */
export function introspect<T>(lab: string, host: string, urlPath: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: introspectSocket(lab, host), path: urlPath, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()) as T);
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`${host} introspect ${urlPath}: timeout`)));
    req.end();
  });
}

export interface PoliciesView {
  networks: { uuid: string; network_id: number; rules: AclRule[] }[];
}

/** A network's compiled rules as a host's agent has them (empty when it has none). */
export async function agentRules(lab: string, host: string, networkUuid: string): Promise<AclRule[]> {
  const p = await introspect<PoliciesView>(lab, host, '/policies');
  return p.networks.find((x) => x.uuid === networkUuid)?.rules ?? [];
}

/** The kernel's version of a policy chain: its counted rules (lines), or undefined when it does not exist. */
export async function kernelChain(lab: string, host: string, chain: string): Promise<string[] | undefined> {
  const r = await run('ip', ['netns', 'exec', hostNetns(lab, host), 'nft', 'list', 'chain', 'ip', 'cirrus', chain]);
  if (r.code !== 0) return undefined;
  return r.stdout.split('\n').filter((l) => /\bcounter\b/.test(l));
}

export interface PolicyNetwork {
  uuid: string;
  name: string;
  /** The network's id on the hosts (`network_id`: its chains are pol_out_<id>, pol_in_<id>). */
  id: number;
  subnet: string;
}

/** How many counted lines the agent's own rendering of `acl` puts in the network's chain of `side` (none without rules). */
export function expectedCountedLines(net: PolicyNetwork, acl: AclRule[], side: 'out' | 'in'): number {
  if (!acl.length) return 0;
  const n = { uuid: net.uuid, name: net.name, id: net.id, table: 0, serviceAddresses: [], subnets: [net.subnet], vni: 1, acl } as NetworkState;
  return aclChain(n, side).rules.filter((l) => /\bcounter\b/.test(l)).length;
}

/**
 * Why `host`'s kernel does not yet hold its agent's `rules` compiled rules of `net` in the
 * chain of `side`, or undefined when it does.
 */
export async function policyNotInKernel(lab: string, host: string, net: PolicyNetwork, side: 'out' | 'in', rules: number): Promise<string | undefined> {
  const acl = await agentRules(lab, host, net.uuid);
  if (acl.length !== rules) return `${host}'s agent has ${acl.length} rules of ${net.name}, not ${rules}`;
  const lines = (await kernelChain(lab, host, `pol_${side}_${net.id}`)) ?? [];
  const expected = expectedCountedLines(net, acl, side);
  if (lines.length !== expected) return `${host}'s pol_${side}_${net.id} has ${lines.length} counted lines in the kernel, ${expected} expected`;
  return undefined;
}
