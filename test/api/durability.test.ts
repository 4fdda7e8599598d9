// An acknowledged write survives kill -9 of the server.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { instanceIpBody, networkBody } from '../support/fixtures.js';
import { call, startServer, tempDataDir } from '../support/server.js';

test('acknowledged writes survive kill -9, and allocation continues without reuse', async () => {
  const dir = tempDataDir();
  try {
    let srv = await startServer(dir);
    const net = (await call(srv.url, 'POST', '/virtual-networks', networkBody('durable', '10.100.0.0/24'))).body['virtual-network'].uuid;
    // Writes in flight when the server dies: every one acknowledged must be there after.
    const acked: { uuid: string; address?: string }[] = [];
    const writes = Array.from({ length: 50 }, async () => {
      const r = await call(srv.url, 'POST', '/instance-ips', instanceIpBody(net)).catch(() => undefined);
      if (r?.status === 200) acked.push({ uuid: r.body['instance-ip'].uuid });
    });
    await Promise.all(writes.slice(0, 25));
    await srv.stop(true); // SIGKILL while the other writes are in flight
    await Promise.all(writes);
    assert.ok(acked.length >= 25, `at least the awaited writes were acknowledged (${acked.length})`);

    srv = await startServer(dir);
    try {
      for (const a of acked) {
        const r = await call(srv.url, 'GET', `/instance-ip/${a.uuid}`);
        assert.equal(r.status, 200, `acknowledged instance-ip ${a.uuid} lost`);
        a.address = r.body['instance-ip'].instance_ip_address;
      }
      const fresh = await call(srv.url, 'POST', '/instance-ips', instanceIpBody(net));
      const address = (await call(srv.url, 'GET', `/instance-ip/${fresh.body['instance-ip'].uuid}`)).body['instance-ip'].instance_ip_address;
      assert.ok(!acked.some((a) => a.address === address), `${address} handed out twice after restart`);
      const defaults = await call(srv.url, 'GET', '/projects?count=True');
      assert.equal(defaults.body.projects.count, 2, 'defaults are not created twice');
    } finally {
      await srv.stop();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
