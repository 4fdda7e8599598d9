// cirrus sg create|rule add|attach|detach|list|show|delete: security groups.

import type { Command } from 'commander';
import { CliError } from '../client.js';
import { contextOf } from '../context.js';
import { projectFqName, resolve } from '../names.js';
import { emit } from '../output.js';
import { RuleSyntaxError } from '../rule-syntax.js';
import { formatSgRule, parseSgRule } from '../sg-rule-syntax.js';
import { addDeleteVerb, projectListQuery, readNamed } from './common.js';

type Json = Record<string, unknown>;

const collect = (value: string, previous: string[] = []) => [...previous, value];
const rulesOf = (g: Json): Json[] => (((g['security_group_entries'] as Json | undefined)?.['policy_rule'] ?? []) as Json[]);
const row = (g: Json): Json => ({
  name: (g['fq_name'] as string[]).join(':'),
  uuid: g['uuid'],
  rules: rulesOf(g).length,
  ports: ((g['virtual_machine_interface_back_refs'] ?? []) as Json[]).length,
});
const COLUMNS = ['name', 'uuid', 'rules', 'ports'];

function parseAll(rules: string[], project: string[]): Json[] {
  try {
    return rules.map((r) => parseSgRule(r, project));
  } catch (e) {
    if (e instanceof RuleSyntaxError) throw new CliError(e.message);
    throw e;
  }
}

export function sgCommands(program: Command): void {
  const sg = program
    .command('sg')
    .description('security groups (what each interface may receive and send)')
    .addHelpText(
      'after',
      `
Rule syntax:  ingress|egress PROTOCOL PEER [PORTS]
  ingress   members receive from PEER;  egress  members send to PEER
  PROTOCOL  any | tcp | udp | icmp | 0-255
  PEER      any | CIDR | GROUP | DOMAIN:PROJECT:GROUP (that group's members)
  PORTS     destination ports: any | N | N-M | N,M-K (tcp/udp only)
Rules only allow: what no rule of an interface's groups allows is dropped; an interface in
no group is not filtered. Examples: 'ingress tcp any 22'  'ingress tcp web 5432'  'egress any any'`,
    );

  sg.command('create <name>')
    .description('create a group (with rules; none: it allows nothing)')
    .option('--rule <rule>', 'a rule (repeat for more)', collect)
    .action(async (name: string, opts: { rule?: string[] }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const project = projectFqName(ctx.project);
      const created = await ctx.api.create('security-group', {
        fq_name: [...project, name],
        parent_type: 'project',
        security_group_entries: { policy_rule: parseAll(opts.rule ?? [], project) },
      });
      const g = await ctx.api.read('security-group', created['uuid'] as string);
      emit(ctx.output, g, [row(g)], COLUMNS);
    });

  sg.command('rule')
    .description('rules of a group')
    .command('add <group> <rule...>')
    .description('add rules to a group (each quoted: cirrus sg rule add web "ingress tcp any 80")')
    .action(async (ref: string, rules: string[], _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const g = await readNamed(ctx, 'security-group', ref);
      const added = parseAll(rules, projectFqName(ctx.project));
      await ctx.api.update('security-group', g['uuid'] as string, { security_group_entries: { policy_rule: [...rulesOf(g), ...added] } });
      const fresh = await ctx.api.read('security-group', g['uuid'] as string);
      emit(ctx.output, fresh, [row(fresh)], COLUMNS);
    });

  const link = (op: 'ADD' | 'DELETE') => async (ref: string, opts: { port: string }, cmd: Command) => {
    const ctx = contextOf(cmd);
    const g = await resolve(ctx.api, 'security-group', ref, ctx.project);
    const port = await resolve(ctx.api, 'virtual-machine-interface', opts.port, ctx.project);
    await ctx.api.post('/ref-update', { type: 'virtual-machine-interface', uuid: port.uuid, 'ref-type': 'security-group', 'ref-uuid': g.uuid, operation: op });
    if (ctx.output === 'json') console.log(JSON.stringify({ group: g.uuid, port: port.uuid, operation: op }));
    else console.log(`${op === 'ADD' ? 'attached' : 'detached'} group ${g.fq_name.join(':')} ${op === 'ADD' ? 'to' : 'from'} port ${port.fq_name.join(':')}`);
  };
  sg.command('attach <group>').description('put a port (interface) into a group').requiredOption('--port <port>', 'the port: NAME, DOMAIN:PROJECT:NAME or uuid').action(link('ADD'));
  sg.command('detach <group>').description('take a port out of a group').requiredOption('--port <port>', 'the port').action(link('DELETE'));

  sg.command('list')
    .description('list the groups of the project')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.api.listDetail('security-group', projectListQuery(ctx));
      const full = await Promise.all(list.map((g) => ctx.api.read('security-group', g['uuid'] as string)));
      emit(ctx.output, full, full.map(row), COLUMNS);
    });

  sg.command('show <group>')
    .description('show a group and its rules')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const g = await readNamed(ctx, 'security-group', ref);
      if (ctx.output === 'json') return emit('json', g, [], []);
      const r = row(g);
      console.log(`name   ${String(r['name'])}\nuuid   ${String(g['uuid'])}\nports  ${String(r['ports'])}\nrules:`);
      rulesOf(g).forEach((rule, i) => console.log(`  ${i + 1}. ${formatSgRule(rule)}`));
    });

  addDeleteVerb(sg, 'security-group', 'delete a group (take its ports out first)');
}
