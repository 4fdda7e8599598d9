// NftSession (lib/nft.py on libnftables) against the kernel, in a scratch namespace: scripts
// are one transaction, listings are nft's JSON, and changes made by anyone else are seen.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { run } from '../../src/agent/dataplane/kernel.js';
import { NftSession } from '../../src/agent/dataplane/nft-session.js';
import { addNetns, removeNetns } from '../support/agent.js';

if (process.getuid?.() !== 0) throw new Error('test/agent needs root: the helper works in a network namespace');
const P = `ns${process.pid}`;
const NS = `${P}-nft`;
let nft: NftSession;

before(async () => {
  await addNetns(NS);
  nft = new NftSession(NS);
});
after(async () => {
  nft?.close();
  await removeNetns(`${P}-`);
});

const elements = async (set: string): Promise<unknown[]> => {
  const r = await nft.run(`list set ip t ${set}`, true);
  assert.equal(r.code, 0, r.stderr);
  const o = (JSON.parse(r.stdout) as { nftables: { set?: { elem?: unknown[] } }[] }).nftables.find((x) => x.set);
  return o?.set?.elem ?? [];
};

test('a script is one transaction; listings are JSON; a failing script changes nothing and says why', async () => {
  const ok = await nft.run('table ip t {\n  set s { type ipv4_addr; }\n  chain c { }\n}\nadd element ip t s { 10.0.0.1, 10.0.0.2 }\n');
  assert.deepEqual([ok.code, ok.stderr], [0, '']);
  assert.deepEqual(await elements('s'), ['10.0.0.1', '10.0.0.2']);
  const bad = await nft.run('add element ip t s { 10.0.0.3 }\nadd element ip t nosuch { 10.0.0.4 }\n');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /No such file or directory/);
  assert.deepEqual(await elements('s'), ['10.0.0.1', '10.0.0.2'], 'all or nothing');
  const missing = await nft.run('list set ip t nosuch', true);
  assert.equal(missing.code, 1);
});

test('a change made by another process is seen by the next listing (the cache follows the ruleset generation)', async () => {
  assert.deepEqual(await elements('s'), ['10.0.0.1', '10.0.0.2']);
  const r = await run('ip', ['netns', 'exec', NS, 'nft', 'add', 'element', 'ip', 't', 's', '{ 10.0.0.9 }']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await elements('s'), ['10.0.0.1', '10.0.0.2', '10.0.0.9']);
  const chains = JSON.parse((await nft.run('list chains', true)).stdout) as { nftables: { chain?: { name: string } }[] };
  assert.deepEqual(chains.nftables.flatMap((o) => (o.chain ? [o.chain.name] : [])), ['c']);
});
