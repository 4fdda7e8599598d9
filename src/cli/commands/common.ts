// Pieces every resource verb group shares.

import type { Command } from 'commander';
import { type CliContext, contextOf } from '../context.js';
import { projectFqName, resolve } from '../names.js';

type Json = Record<string, unknown>;

/** The list query selecting the objects of the context's project. */
export function projectListQuery(ctx: CliContext): string {
  return `parent_fq_name_str=${encodeURIComponent(projectFqName(ctx.project).join(':'))}&parent_type=project`;
}

/** Resolves NAME / DOMAIN:PROJECT:NAME / uuid and reads the object. */
export async function readNamed(ctx: CliContext, type: string, ref: string): Promise<Json> {
  const { uuid } = await resolve(ctx.api, type, ref, ctx.project);
  return ctx.api.read(type, uuid);
}

/** `<group> delete <ref>` for a type whose objects are deleted with one call. */
export function addDeleteVerb(group: Command, type: string, description: string): void {
  group
    .command(`delete <${group.name()}>`)
    .description(description)
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const { uuid, fq_name } = await resolve(ctx.api, type, ref, ctx.project);
      await ctx.api.delete(type, uuid);
      if (ctx.output === 'json') console.log(JSON.stringify({ deleted: uuid }));
      else console.log(`deleted ${type} ${fq_name.join(':')} (${uuid})`);
    });
}
