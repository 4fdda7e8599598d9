// The counters of Cirrus's nftables rules that decide something: each policy rule (named
// by its uuid), each network's default drop, anti-spoofing and host protection drops.
// Read when asked (introspect, metrics), not on every reconcile pass.

import { run } from './kernel.js';
import { NFT_FAMILIES, NFT_TABLE } from './names.js';

export interface AclHit {
  family: string;
  chain: string;
  /** The policy rule's uuid, "default", "spoofed source" or "host protection". */
  rule: string;
  verdict: 'pass' | 'drop';
  packets: number;
  bytes: number;
}

interface RuleJson {
  rule?: { chain: string; comment?: string; expr: Record<string, unknown>[] };
}

/** The protection chains alone (small whatever the policies): what metrics scrape. */
export const PROTECTION_CHAINS: [string, string][] = [
  ['ip', 'pre'],
  ['ip', 'from_workload'],
  ['arp', 'classify'],
];

/** Every deciding rule of Cirrus's tables, or only those of the given chains. */
export async function readAclHits(chains?: [string, string][]): Promise<AclHit[]> {
  const hits: AclHit[] = [];
  const lists = chains ? chains.map(([family, chain]) => ['list', 'chain', family, NFT_TABLE, chain]) : NFT_FAMILIES.map((family) => ['list', 'table', family, NFT_TABLE]);
  for (const list of lists) {
    const family = list[2]!;
    const r = await run('nft', ['-j', ...list]);
    if (r.code !== 0) continue; // no table yet
    for (const o of (JSON.parse(r.stdout) as { nftables: RuleJson[] }).nftables) {
      const rule = o.rule;
      const counter = rule?.expr.find((e) => 'counter' in e)?.['counter'] as { packets: number; bytes: number } | undefined;
      if (!rule?.comment || !counter) continue;
      const verdict = rule.expr.some((e) => 'drop' in e) ? 'drop' : 'pass';
      hits.push({ family, chain: rule.chain, rule: rule.comment, verdict, packets: counter.packets, bytes: counter.bytes });
    }
  }
  return hits;
}
