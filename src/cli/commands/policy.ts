// cirrus policy create|attach|detach|list|show|delete

import type { Command } from 'commander';
import { CliError } from '../client.js';
import { contextOf } from '../context.js';
import { addDeleteVerb, projectListQuery, readNamed } from './common.js';
import { projectFqName, resolve } from '../names.js';
import { emit } from '../output.js';
import { RuleSyntaxError, formatRule, parseRule } from '../rule-syntax.js';

type Json = Record<string, unknown>;

const collect = (value: string, previous: string[] = []) => [...previous, value];

function rulesOf(p: Json): Json[] {
  return (((p['network_policy_entries'] as Json | undefined)?.['policy_rule'] ?? []) as Json[]);
}

function row(p: Json): Json {
  return {
    name: (p['fq_name'] as string[]).join(':'),
    uuid: p['uuid'],
    rules: rulesOf(p).length,
    networks: ((p['virtual_network_back_refs'] ?? []) as Json[]).map((n) => (n['to'] as string[]).at(-1)),
  };
}

const COLUMNS = ['name', 'uuid', 'rules', 'networks'];

export function policyCommands(program: Command): void {
  const policy = program
    .command('policy')
    .description('network policies (rules between networks)')
    .addHelpText(
      'after',
      `
Rule syntax:  ACTION PROTOCOL SRC [PORTS] >|<> DST [PORTS]
  ACTION    pass | deny          PROTOCOL  any | tcp | udp | icmp | icmp6 | 0-255
  SRC, DST  any | NETWORK | DOMAIN:PROJECT:NETWORK | CIDR
  PORTS     any | N | N-M | N,M-K     (tcp/udp only)
  >         from SRC to DST (replies pass);  <>  both ways
Examples: 'pass tcp red > green 80'  'pass any red <> green'  'deny tcp any > mgmt 22'`,
    );

  policy
    .command('create <name>')
    .description('create a policy from rules, evaluated in the order given (first match wins)')
    .option('--rule <rule>', 'a rule (repeat for more)', collect)
    .action(async (name: string, opts: { rule?: string[] }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const project = projectFqName(ctx.project);
      if (!opts.rule?.length) throw new CliError('give at least one --rule (see cirrus policy --help)');
      let rules;
      try {
        rules = opts.rule.map((r, i) => parseRule(r, project, i + 1));
      } catch (e) {
        if (e instanceof RuleSyntaxError) throw new CliError(e.message);
        throw e;
      }
      const created = await ctx.api.create('network-policy', {
        fq_name: [...project, name],
        parent_type: 'project',
        network_policy_entries: { policy_rule: rules },
      });
      const p = await ctx.api.read('network-policy', created['uuid'] as string);
      emit(ctx.output, p, [row(p)], COLUMNS);
    });

  const link = (op: 'ADD' | 'DELETE') => async (ref: string, opts: { network: string; sequence?: string }, cmd: Command) => {
    const ctx = contextOf(cmd);
    const p = await resolve(ctx.api, 'network-policy', ref, ctx.project);
    const vn = await resolve(ctx.api, 'virtual-network', opts.network, ctx.project);
    const sequence = Number(opts.sequence ?? 0);
    if (!Number.isInteger(sequence) || sequence < 0) throw new CliError(`--sequence: '${opts.sequence}' is not a non-negative integer`);
    await ctx.api.post('/ref-update', {
      type: 'virtual-network',
      uuid: vn.uuid,
      'ref-type': 'network-policy',
      'ref-uuid': p.uuid,
      operation: op,
      attr: op === 'ADD' ? { sequence: { major: sequence, minor: 0 } } : null,
    });
    if (ctx.output === 'json') console.log(JSON.stringify({ policy: p.uuid, network: vn.uuid, operation: op }));
    else console.log(`${op === 'ADD' ? 'attached' : 'detached'} policy ${p.fq_name.join(':')} ${op === 'ADD' ? 'to' : 'from'} network ${vn.fq_name.join(':')}`);
  };

  policy
    .command('attach <policy>')
    .description('apply a policy to a network')
    .requiredOption('--network <network>', 'the network')
    .option('--sequence <n>', 'order among the network\'s policies (lower first)', '0')
    .action(link('ADD'));

  policy.command('detach <policy>').description('remove a policy from a network').requiredOption('--network <network>', 'the network').action(link('DELETE'));

  policy
    .command('list')
    .description('list the policies of the project')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.api.listDetail('network-policy', projectListQuery(ctx));
      const full = await Promise.all(list.map((p) => ctx.api.read('network-policy', p['uuid'] as string)));
      emit(ctx.output, full, full.map(row), COLUMNS);
    });

  policy
    .command('show <policy>')
    .description('show a policy and its rules')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const p = await readNamed(ctx, 'network-policy', ref);
      if (ctx.output === 'json') return emit('json', p, [], []);
      const r = row(p);
      console.log(`name      ${String(r['name'])}\nuuid      ${String(p['uuid'])}\nnetworks  ${(r['networks'] as string[]).join(', ') || '-'}\nrules:`);
      rulesOf(p).forEach((rule, i) => console.log(`  ${i + 1}. ${formatRule(rule)}`));
    });

  addDeleteVerb(policy, 'network-policy', 'delete a policy (detach it from its networks first)');
}
