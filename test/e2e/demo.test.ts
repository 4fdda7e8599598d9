// The first-run demo: `lab up --demo` builds the demo topology, a second run keeps it,
// and `lab down` removes it. Uses the demo's fixed workload names (service-1, ...), so it
// needs them free on this machine.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { DEMO_WORKLOADS } from '../../src/lab/demo.js';
import { CIRRUS, freePort } from '../support/server.js';

if (process.getuid?.() !== 0) throw new Error('test/e2e needs root: hosts are network namespaces');

const LAB = `d${process.pid}`;
const run = promisify(execFile);
const cirrus = (...args: string[]) => run(process.execPath, [CIRRUS, ...args], { timeout: 120_000 });

after(async () => {
  await cirrus('lab', 'down', '--name', LAB).catch(() => undefined);
});

test('lab up --demo builds the demo topology, idempotently; lab down removes it', async () => {
  const port = String(await freePort());
  const first = await cirrus('lab', 'up', '--hosts', '2', '--demo', '--name', LAB, '--api-port', port);
  for (const w of DEMO_WORKLOADS) assert.match(first.stderr, new RegExp(`workload ${w.name} on ${w.host}: ${w.ip.replace(/\./g, '\\.')} in ${w.network}`));
  assert.match(first.stdout, /try:/);
  const ping = await cirrus('lab', 'exec', 'client-1', '--name', LAB, '--', 'ping', '-c', '1', '-W', '2', '192.168.10.10');
  assert.match(ping.stdout, /1 received/);
  const isolated = await cirrus('lab', 'exec', 'green-1', '--name', LAB, '--', 'ping', '-c', '1', '-W', '1', '192.168.10.10').catch((e: { code: number }) => e);
  assert.notEqual((isolated as { code?: number }).code ?? 0, 0, 'green cannot reach red');
  const again = await cirrus('lab', 'up', '--hosts', '2', '--demo', '--name', LAB, '--api-port', port);
  assert.doesNotMatch(again.stderr, /workload .* on h/, 'the second run creates nothing');
  const ports = JSON.parse((await run(process.execPath, [CIRRUS, '-o', 'json', 'port', 'list'], { env: { ...process.env, CIRRUS_API: `http://127.0.0.1:${port}` } })).stdout) as unknown[];
  assert.equal(ports.length, DEMO_WORKLOADS.length);
  await cirrus('lab', 'down', '--name', LAB);
  const left = (await run('ip', ['netns', 'list'])).stdout;
  for (const w of DEMO_WORKLOADS) assert.doesNotMatch(left, new RegExp(`^${w.name}\\b`, 'm'));
  assert.doesNotMatch(left, new RegExp(`^${LAB}-`, 'm'));
});
