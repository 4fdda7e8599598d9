// The lab's gateway host and the outside: host `gw` on the underlay runs an agent with
// `--gateway-interface`, and a veth joins it to namespace `<lab>-outside`, which plays the
// Internet (its own address, a default route to the gateway). External networks' floating
// IPs are reached from there through the gateway; SNAT networks leave through it.

import { ip, ensureNetns } from './netns.js';

export const GATEWAY_HOST = 'gw';
export const OUTSIDE = 'outside';
/** The gateway's underlay address (above the hosts' range, below the control nodes'). */
export const GATEWAY_UNDERLAY_IP = '10.254.0.190';
/** The gateway's interface towards the outside and the link's addresses (TEST-NET-1). */
export const GATEWAY_OUTSIDE_IF = 'out0';
export const GATEWAY_OUTSIDE_IP = '192.0.2.2';
export const OUTSIDE_IP = '192.0.2.1';
const OUTSIDE_PREFIX_LEN = 24;
const OUTSIDE_IF = 'eth0';

export const outsideNetns = (lab: string): string => `${lab}-${OUTSIDE}`;

/** The agent flags that make the gateway host's agent a gateway. */
export const gatewayAgentArgs = (): string[] => ['--gateway-interface', GATEWAY_OUTSIDE_IF, '--gateway-nexthop', OUTSIDE_IP];

/** The outside namespace and its link to the gateway host, made where missing. */
export async function ensureOutside(lab: string, gatewayNetns: string): Promise<void> {
  const outside = outsideNetns(lab);
  await ensureNetns(outside);
  const has = async (netns: string, dev: string) => (await ip(['-n', netns, '-j', 'link', 'show'])).includes(`"ifname":"${dev}"`);
  const inGw = await has(gatewayNetns, GATEWAY_OUTSIDE_IF);
  if (!inGw || !(await has(outside, OUTSIDE_IF))) {
    if (inGw) await ip(['-n', gatewayNetns, 'link', 'del', GATEWAY_OUTSIDE_IF]);
    await ip(['-n', gatewayNetns, 'link', 'add', GATEWAY_OUTSIDE_IF, 'type', 'veth', 'peer', 'name', OUTSIDE_IF, 'netns', outside]);
  }
  await ip(['-n', gatewayNetns, 'addr', 'replace', `${GATEWAY_OUTSIDE_IP}/${OUTSIDE_PREFIX_LEN}`, 'dev', GATEWAY_OUTSIDE_IF]);
  await ip(['-n', gatewayNetns, 'link', 'set', GATEWAY_OUTSIDE_IF, 'up']);
  await ip(['-n', outside, 'addr', 'replace', `${OUTSIDE_IP}/${OUTSIDE_PREFIX_LEN}`, 'dev', OUTSIDE_IF]);
  await ip(['-n', outside, 'link', 'set', OUTSIDE_IF, 'up']);
  await ip(['-n', outside, 'route', 'replace', 'default', 'via', GATEWAY_OUTSIDE_IP]);
}
