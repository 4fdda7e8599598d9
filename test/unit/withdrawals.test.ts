// Delayed withdrawals (make before break): which deletions of a host's delta wait, and
// what happens to them when keys come back or the session resyncs.

import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import type { Delta } from '../../src/control/routing.js';
import { DelayedWithdrawals, WITHDRAW_DELAY_MS, floatingValues, splitWithdrawals } from '../../src/control/withdrawals.js';

const entry = (k: string): [string, never] => [k, {} as never];

test('splitWithdrawals: a network the host stops seeing waits with its routes and floating IPs; the rest goes now', () => {
  const cases: { name: string; del: string[]; now: string[]; later: string[] }[] = [
    { name: 'nothing dropped', del: ['r/red/10.0.0.5', 'f/vip', 'p/a'], now: ['r/red/10.0.0.5', 'f/vip', 'p/a'], later: [] },
    {
      name: 'a pool network dropped',
      del: ['n/svc', 'r/svc/10.96.0.3', 'f/vip', 'a/svc/pol', 'l/red/svc', 's/sg', 'r/red/10.0.0.5'],
      now: ['a/svc/pol', 'l/red/svc', 's/sg', 'r/red/10.0.0.5'],
      later: ['n/svc', 'r/svc/10.96.0.3', 'f/vip'],
    },
    { name: 'its own port goes at once', del: ['n/red', 'p/a', 'r/red/10.0.0.6'], now: ['p/a'], later: ['n/red', 'r/red/10.0.0.6'] },
    { name: 'a network whose uuid prefixes another', del: ['n/re', 'r/red/10.0.0.6'], now: ['r/red/10.0.0.6'], later: ['n/re'] },
  ];
  for (const c of cases) {
    const { now, later } = splitWithdrawals({ set: [entry('r/blue/10.1.0.1')], del: c.del });
    assert.deepEqual(now.del, c.now, c.name);
    assert.deepEqual(later, c.later, c.name);
    assert.deepEqual(now.set.map(([k]) => k), ['r/blue/10.1.0.1'], `${c.name}: sets go now`);
  }
});

test('splitWithdrawals: a floating IP that changed this round goes to the leaving host now, with its new value, and is withdrawn later', () => {
  const vip = { uuid: 'vip', network: 'svc', address: '10.96.0.10', backends: [] } as never;
  const deltas = new Map<string, Delta>([
    ['h1', { set: [['f/vip', vip], entry('r/red/10.0.0.5')], del: [] }],
    ['h3', { set: [], del: ['n/svc', 'f/vip', 'f/other', 'a/svc/pol'] }],
  ]);
  const fresh = floatingValues(deltas.values());
  assert.deepEqual([...fresh.keys()], ['f/vip'], 'floating IPs only');
  const { now, later } = splitWithdrawals(deltas.get('h3')!, fresh);
  assert.deepEqual(now, { set: [['f/vip', vip]], del: ['a/svc/pol'] });
  assert.deepEqual(later, ['n/svc', 'f/vip', 'f/other'], 'f/other did not change: it keeps its value until withdrawn');
  assert.deepEqual(splitWithdrawals({ set: [], del: ['f/vip'] }, fresh), { now: { set: [], del: ['f/vip'] }, later: [] }, 'a host that still sees the network: deleted at once');
});

test('DelayedWithdrawals: held keys are withdrawn after the delay, unless set again or the session resyncs', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const sentNow: Delta[] = [];
  const sentLater: string[][] = [];
  const w = new DelayedWithdrawals((del) => sentLater.push(del));
  const deliver = (d: Delta) => w.deliver(d, (now) => sentNow.push(now));

  deliver({ set: [entry('f/vip')], del: ['n/svc', 'r/svc/10.96.0.3', 'a/svc/pol'] });
  assert.deepEqual(sentNow, [{ set: [entry('f/vip')], del: ['a/svc/pol'] }]);
  mock.timers.tick(WITHDRAW_DELAY_MS - 1);
  assert.deepEqual(sentLater, [], 'not yet');
  mock.timers.tick(1);
  assert.deepEqual(sentLater, [['n/svc', 'r/svc/10.96.0.3']]);

  // Only withdrawals: nothing is sent now (no empty delta).
  deliver({ set: [], del: ['n/svc', 'r/svc/10.96.0.3'] });
  assert.equal(sentNow.length, 1);
  // The network comes back before the delay, one of its routes not: only that route is withdrawn.
  deliver({ set: [entry('n/svc')], del: [] });
  mock.timers.tick(WITHDRAW_DELAY_MS);
  assert.deepEqual(sentLater, [['n/svc', 'r/svc/10.96.0.3'], ['r/svc/10.96.0.3']]);

  deliver({ set: [], del: ['n/svc', 'f/vip'] });
  w.clear();
  mock.timers.tick(WITHDRAW_DELAY_MS);
  assert.equal(sentLater.length, 2, 'a resync forgets what was pending');
});
