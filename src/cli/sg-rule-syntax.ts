// The CLI's readable security-group rule syntax, compiled to TF's PolicyRuleType:
//
//   DIRECTION PROTOCOL PEER [PORTS]
//
//   DIRECTION  ingress (the group's members receive from PEER) | egress (they send to PEER)
//   PROTOCOL   any | tcp | udp | icmp | 0-255
//   PEER       any | CIDR | GROUP | DOMAIN:PROJECT:GROUP (the members of that group)
//   PORTS      destination ports: any | N | N-M | N,M-K (tcp/udp only)
//
// Examples: "ingress tcp any 22", "ingress tcp web 5432", "egress any any".

import { parseCidr } from '../util/ipv4.js';
import { RuleSyntaxError, anyPort, ports } from './rule-syntax.js';

type Json = Record<string, unknown>;

export function parseSgRule(text: string, projectFq: string[]): Json {
  const tokens = text.trim().split(/\s+/).filter(Boolean);
  const fail = (why: string): never => {
    throw new RuleSyntaxError(`rule '${text}': ${why} (expected: ingress|egress PROTOCOL PEER [PORTS])`);
  };
  const direction = (tokens.shift() ?? fail('missing direction')).toLowerCase();
  if (direction !== 'ingress' && direction !== 'egress') fail(`direction '${direction}' is not ingress or egress`);
  const protocol = (tokens.shift() ?? fail('missing protocol')).toLowerCase();
  if (!['any', 'tcp', 'udp', 'icmp'].includes(protocol) && !(/^\d{1,3}$/.test(protocol) && Number(protocol) <= 255)) fail(`protocol '${protocol}' is not any, tcp, udp, icmp or 0-255`);
  const peerText = tokens.shift() ?? fail('missing peer');
  const dstPorts = tokens.length ? ports(tokens.shift()!, fail) : anyPort();
  if (tokens.length) fail(`unexpected '${tokens.join(' ')}'`);
  if (protocol !== 'tcp' && protocol !== 'udp' && dstPorts[0]!.start_port !== -1) fail(`ports need tcp or udp, not ${protocol}`);
  const peer = peerOf(peerText, projectFq, fail);
  const local = { security_group: 'local' };
  return {
    direction: '>',
    protocol,
    ethertype: 'IPv4',
    src_addresses: [direction === 'ingress' ? peer : local],
    dst_addresses: [direction === 'ingress' ? local : peer],
    src_ports: anyPort(),
    dst_ports: dstPorts,
  };
}

function peerOf(token: string, projectFq: string[], fail: (why: string) => never): Json {
  if (token === 'any') return { subnet: { ip_prefix: '0.0.0.0', ip_prefix_len: 0 } };
  if (token.includes('/')) {
    const c = parseCidr(token);
    if (typeof c === 'string') fail(c);
    const [ip, len] = token.split('/');
    return { subnet: { ip_prefix: ip, ip_prefix_len: Number(len) } };
  }
  const parts = token.split(':');
  if (parts.length === 1) return { security_group: [...projectFq, token].join(':') };
  if (parts.length === 3 && parts.every(Boolean)) return { security_group: token };
  return fail(`'${token}' is not any, a CIDR, a group name or DOMAIN:PROJECT:GROUP`);
}

/** A TF security-group rule in the CLI syntax (for `sg show`). */
export function formatSgRule(rule: Json): string {
  const side = (list: unknown) => ((list as Json[] | undefined) ?? [])[0] ?? {};
  const ingress = (side(rule['dst_addresses'])['security_group'] as string | undefined) === 'local';
  const peer = side(ingress ? rule['src_addresses'] : rule['dst_addresses']);
  const subnet = peer['subnet'] as { ip_prefix: string; ip_prefix_len: number } | undefined;
  const peerText = subnet ? (subnet.ip_prefix_len === 0 ? 'any' : `${subnet.ip_prefix}/${subnet.ip_prefix_len}`) : String(peer['security_group'] ?? 'any');
  const ps = ((rule['dst_ports'] as { start_port: number; end_port: number }[] | undefined) ?? []).filter((p) => p.start_port !== -1);
  const portText = ps.length ? ' ' + ps.map((p) => (p.start_port === p.end_port ? `${p.start_port}` : `${p.start_port}-${p.end_port}`)).join(',') : '';
  return `${ingress ? 'ingress' : 'egress'} ${String(rule['protocol'])} ${peerText}${portText}`;
}
