// The agent's flow worker (a real worker thread running a stand-in pipeline through the real
// worker side): host states go over only when they changed; a crash is reported, the worker
// started again with the last host state, and the crashed worker's reader process died with
// its thread (--pdeathsig fires on the death of the thread that spawned it); stop() ends the
// worker and its reader. The host state crosses by structured clone, Maps and all.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { FlowWorker } from '../../src/agent/flows/flow-worker.js';
import type { HostState } from '../../src/agent/host-state.js';
import { pollUntil } from '../../src/util/poll.js';

const STAND_IN = new URL('../support/flow-worker-stand-in.js', import.meta.url);

const HOST: HostState = {
  networks: [{ uuid: 'red', name: 'd:p:red', id: 4, table: 1_000_004, serviceAddresses: ['10.1.0.254'], subnets: ['10.1.0.0/24'], vni: 4, acl: [{ uuid: 'r1', action: 'pass', protocol: 6, src: null, dst: ['10.1.0.0/24'], dports: [[80, 80]] }] }],
  ports: [],
  remotes: [{ network: 'red', address: '10.1.0.20', vtep: '10.254.0.2' }],
  leaks: [],
  pending: [],
  groups: new Map([['web', { uuid: 'web', name: 'd:p:web', ingress: [], egress: [{ uuid: 'e', action: 'pass', src: null, dst: null }] }]]),
  floatingIps: [{ uuid: 'f', network: 'red', address: '10.1.0.99', local: [], remote: new Map([['10.254.0.2', 1]]), backends: 1 }],
};

/** Running (not dead, not a zombie left by a thread that died). */
function alive(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

test('the host state crosses to the worker intact (structured clone: Maps kept, no functions)', () => {
  assert.deepEqual(structuredClone(HOST), HOST);
});

test('flow worker: host states when changed; a crash reported and the worker restarted with them, its reader gone with its thread; stop ends it all', async () => {
  const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-flow-worker-')), 'crashed');
  const flows = new FlowWorker({ options: { collector: 'unix:/nonexistent', token: 't' }, self: { host: 'h1' } }, STAND_IN);
  flows.start();
  try {
    const first = await pollUntil('the worker and its reader', async () => (await flows.stats()).pipeline?.pids.events, { timeoutMs: 10_000, intervalMs: 20 });
    assert.ok(alive(first));
    flows.setHost(HOST);
    flows.setHost(structuredClone(HOST)); // the same state again (a new object): not posted
    assert.deepEqual(await flows.stats(), { running: true, restarts: 0, pipeline: { connected: false, buffered: 0, dropped: 0, acked: 0, resent: 0, unparsed: 0, overruns: 0, live: 1, lost: 0, deniedPackets: 0, pids: { events: first }, eventBuffer: { bytes: 4096 } } });
    const registry = new Registry();
    flows.register(registry);
    const metrics = await registry.getSingleMetricAsString('cirrus_agent_flows');
    assert.match(metrics, /^cirrus_agent_flows\{state="live"\} 1$/m);
    assert.match(metrics, /^cirrus_agent_flows\{state="eventBufferBytes"\} 4096$/m);

    flows.setHost({ ...HOST, pending: [{ vmiUuid: 'v', reason: `crash-once:${marker}` }] });
    const after = await pollUntil(
      'the worker started again',
      async () => {
        const s = await flows.stats();
        return s.restarts === 1 && s.pipeline ? s : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    assert.match(after.lastExit ?? '', /crashed: stand-in: asked to crash/);
    assert.equal(after.pipeline!.live, 1, 'the new worker got the last host state');
    const second = after.pipeline!.pids.events!;
    assert.notEqual(second, first);
    await pollUntil('the crashed worker\'s reader to die with its thread', () => (alive(first) ? undefined : true), { timeoutMs: 5_000, intervalMs: 20 });
    assert.ok(alive(second));

    await flows.stop();
    assert.equal(alive(second), false, 'stop() waited for the reader to end');
    assert.deepEqual(await flows.stats(), { running: false, restarts: 1, lastExit: after.lastExit });
  } finally {
    await flows.stop();
    fs.rmSync(path.dirname(marker), { recursive: true, force: true });
  }
});
