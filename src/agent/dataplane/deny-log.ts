// What the policy and security-group chains drop is logged to one NFLOG group, the deciding
// rule in the log prefix, so that denied attempts become flow records (src/agent/flows/denied.ts).
// Only the first 64 bytes (headers) of each packet go to the reader.

export const DENY_LOG_GROUP = 7;
const PREFIX = 'cirrus-deny';

/** The nft statement logging a drop decided by `rule` (a policy rule's uuid or 'default'; for groups, 'security groups'). */
export const denyLog = (kind: 'policy' | 'sg', rule: string): string => `log prefix "${PREFIX} ${kind === 'policy' ? 'p' : 's'} ${rule}" group ${DENY_LOG_GROUP} snaplen 64 `;

/** The deciding rule from a logged packet's prefix; undefined for others' log prefixes. */
export function parseDenyPrefix(prefix: string): { kind: 'policy' | 'sg'; rule: string } | undefined {
  const m = new RegExp(`^${PREFIX} ([ps]) (.+)$`).exec(prefix);
  return m ? { kind: m[1] === 'p' ? 'policy' : 'sg', rule: m[2]! } : undefined;
}
