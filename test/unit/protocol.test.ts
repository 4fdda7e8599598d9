// The control protocol's encoding: entries written from their one serialisation, read back
// by the agent's validating parser (policy blocks included).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AclBlockEntry, type ControlMessage, encodeControlMessage, entryJson, parseControlMessage } from '../../src/control/protocol.js';

const block: AclBlockEntry = { network: 'n1', policy: 'p1', rules: [{ uuid: 'r1', action: 'deny', protocol: 6, src: ['10.1.0.0/24'], dst: null, dports: [[22, 22]] }] };

test('a delta and a sync encode to what the parser reads back', () => {
  const delta: ControlMessage = { type: 'delta', seq: 7, set: [['a/n1/p1', block], ['l/n1/n2', { network: 'n1', peer: 'n2' }]], del: ['a/n1/p0', 'r/n1/10.1.0.5'] };
  assert.deepEqual(parseControlMessage(encodeControlMessage(delta)), delta);
  const sync: ControlMessage = { type: 'sync', seq: 0, node: 'c"1', entries: [['a/n1/p1', block]] };
  assert.deepEqual(parseControlMessage(encodeControlMessage(sync)), sync);
  assert.equal(entryJson(block), entryJson(block), 'one serialisation per entry object');
});

test('a malformed policy block is refused', () => {
  const bad = { type: 'delta', seq: 1, set: [['a/n1/p1', { network: 'n1', policy: 'p1', rules: [{ uuid: 'r', action: 'maybe', src: null, dst: null }] }]], del: [] };
  assert.throws(() => parseControlMessage(JSON.stringify(bad)), /control message/);
  const badKey = { type: 'delta', seq: 1, set: [['x/n1/p1', block]], del: [] };
  assert.throws(() => parseControlMessage(JSON.stringify(badKey)), /control message/);
});
