// The CLI's readable policy rule syntax, compiled to TF's PolicyRuleType:
//
//   ACTION PROTOCOL SRC [PORTS] DIRECTION DST [PORTS]
//
//   ACTION     pass | deny
//   PROTOCOL   any | tcp | udp | icmp | icmp6 | 0-255
//   SRC, DST   any | NETWORK | DOMAIN:PROJECT:NETWORK | CIDR (a.b.c.d/n)
//   PORTS      any | N | N-M | N,M-K      (ports only make sense with tcp/udp)
//   DIRECTION  >  (SRC to DST; replies pass)   |   <>  (both ways)
//
// Examples: "pass tcp red > green 80", "deny any any <> any", "pass udp red 1024-65535 > 10.0.0.0/8 53".

import { parseCidr } from '../util/ipv4.js';

export interface PolicyRule {
  direction: '>' | '<>';
  protocol: string;
  src_addresses: Record<string, unknown>[];
  dst_addresses: Record<string, unknown>[];
  src_ports: { start_port: number; end_port: number }[];
  dst_ports: { start_port: number; end_port: number }[];
  action_list: { simple_action: 'pass' | 'deny' };
  rule_sequence: { major: number; minor: number };
}

export class RuleSyntaxError extends Error {}

const PROTOCOLS = new Set(['any', 'tcp', 'udp', 'icmp', 'icmp6']);
const DIRECTIONS = new Set(['>', '<>']);

/** `projectFq` qualifies bare network names (["default-domain","admin"]). */
export function parseRule(text: string, projectFq: string[], sequence = 0): PolicyRule {
  const tokens = text.trim().split(/\s+/).filter(Boolean);
  const fail = (why: string): never => {
    throw new RuleSyntaxError(`rule '${text}': ${why} (expected: ACTION PROTOCOL SRC [PORTS] >|<> DST [PORTS])`);
  };
  const next = (what: string): string => tokens.shift() ?? fail(`missing ${what}`);

  const action = next('action').toLowerCase();
  if (action !== 'pass' && action !== 'deny') fail(`action '${action}' is not pass or deny`);
  const protocol = next('protocol').toLowerCase();
  if (!PROTOCOLS.has(protocol) && !(/^\d{1,3}$/.test(protocol) && Number(protocol) <= 255)) fail(`protocol '${protocol}' is not any, tcp, udp, icmp, icmp6 or 0-255`);
  const src = endpoint(next('source'), projectFq, fail);
  let token = next('direction');
  let srcPorts = anyPort();
  if (!DIRECTIONS.has(token)) {
    if (!/^(any|[\d,-]+)$/.test(token)) fail(`direction '${token}' is not > or <>`);
    srcPorts = ports(token, fail);
    token = next('direction');
  }
  if (!DIRECTIONS.has(token)) fail(`direction '${token}' is not > or <>`);
  const dst = endpoint(next('destination'), projectFq, fail);
  const dstPorts = tokens.length ? ports(tokens.shift()!, fail) : anyPort();
  if (tokens.length) fail(`unexpected '${tokens.join(' ')}'`);
  const portless = protocol !== 'tcp' && protocol !== 'udp';
  if (portless && (srcPorts[0]!.start_port !== -1 || dstPorts[0]!.start_port !== -1)) fail(`ports need tcp or udp, not ${protocol}`);
  return {
    direction: token as '>' | '<>',
    protocol,
    src_addresses: [src],
    dst_addresses: [dst],
    src_ports: srcPorts,
    dst_ports: dstPorts,
    action_list: { simple_action: action as 'pass' | 'deny' },
    rule_sequence: { major: sequence, minor: 0 },
  };
}

function endpoint(token: string, projectFq: string[], fail: (why: string) => never): Record<string, unknown> {
  if (token === 'any') return { virtual_network: 'any' };
  if (/^[\d.]+\/\d+$/.test(token)) {
    const cidr = parseCidr(token);
    if (typeof cidr === 'string') fail(cidr);
    const [ip, len] = token.split('/');
    return { subnet: { ip_prefix: ip, ip_prefix_len: Number(len) } };
  }
  const parts = token.split(':');
  if (parts.length === 1) return { virtual_network: [...projectFq, token].join(':') };
  if (parts.length === 3 && parts.every(Boolean)) return { virtual_network: token };
  return fail(`'${token}' is not any, a network name, DOMAIN:PROJECT:NETWORK or a CIDR`);
}

export function anyPort() {
  return [{ start_port: -1, end_port: -1 }];
}

export function ports(token: string, fail: (why: string) => never) {
  if (token === 'any') return anyPort();
  return token.split(',').map((part) => {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (!m) return fail(`'${part}' is not a port, a range N-M, or any`);
    const start = Number(m[1]);
    const end = Number(m[2] ?? m[1]);
    if (start > 65535 || end > 65535 || start > end) return fail(`port range '${part}' is invalid`);
    return { start_port: start, end_port: end };
  });
}

/** The rule written back in the CLI syntax (for `policy show`). */
export function formatRule(rule: Record<string, unknown>): string {
  const addr = (list: unknown): string => {
    const a = ((list as Record<string, unknown>[]) ?? [])[0] ?? {};
    if (a['subnet']) {
      const s = a['subnet'] as { ip_prefix: string; ip_prefix_len: number };
      return `${s.ip_prefix}/${s.ip_prefix_len}`;
    }
    return String(a['virtual_network'] ?? a['security_group'] ?? 'any');
  };
  const portText = (list: unknown): string => {
    const ps = (list as { start_port: number; end_port: number }[] | undefined) ?? [];
    if (!ps.length || ps.every((p) => p.start_port === -1)) return '';
    return ' ' + ps.map((p) => (p.start_port === p.end_port ? `${p.start_port}` : `${p.start_port}-${p.end_port}`)).join(',');
  };
  const action = (rule['action_list'] as { simple_action?: string } | undefined)?.simple_action ?? 'pass';
  return `${action} ${String(rule['protocol'])} ${addr(rule['src_addresses'])}${portText(rule['src_ports'])} ${String(rule['direction'])} ${addr(rule['dst_addresses'])}${portText(rule['dst_ports'])}`;
}
