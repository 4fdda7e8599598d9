// Open vSwitch with the userspace datapath (`datapath_type=netdev`; this kernel has no OVS
// module) as the Neutron/OVS stand-in: two host namespaces on an underlay bridge, each with
// its own ovsdb-server and ovs-vswitchd (a vswitchd opens its ports by name in its own
// namespace), laid out as Neutron's OVS agent does it:
//
//   br-int  the workloads' veths and a `vxlan` tunnel port to the other host (VNI 100);
//   br-phy  the underlay interface `ul0`; the host's underlay address sits on br-phy's
//           internal port, so that OVS's userspace tunnelling finds its route and ARP there.
//
// Host A also has a second workload on br-int (offloads on): the same-host path.
//
// The offload trap: a veth hands OVS's userspace datapath packets whose TCP checksum is
// left to "the hardware" (checksum offload, TSO). With `userspace-tso-enable=true` OVS
// carries such packets between local ports (the same-host path works at full speed), but
// OVS 3.1 cannot segment or checksum them into a VXLAN tunnel: TCP across hosts stalls
// (0 bytes) unless the cross-host workloads turn transmit offloads off
// (`ethtool -K eth0 tx off`). Ping works either way, which hides the problem.
//
// The daemons run as children of the benchmark (`ip netns exec` execs them: the PIDs are
// theirs), with database, sockets, pid files and logs in a temporary directory of their
// own; OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR point there too, so nothing of the
// system's Open vSwitch is read or written. stop() ends them by PID.

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pollUntil } from '../../src/util/poll.js';
import { type DataPath, addNetns, ipn, underlay } from './baselines.js';
import { must, stopChild } from './exec.js';

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

export interface OvsPaths {
  crossHost: DataPath;
  sameHost: DataPath;
  /** Ends both hosts' daemons (by PID) and removes their directory; the namespaces are the caller's to delete. */
  stop(): Promise<void>;
}

export function ovsAvailable(): boolean {
  return fs.existsSync(SCHEMA) && ['/usr/sbin/ovs-vswitchd', '/usr/sbin/ovsdb-server', '/usr/bin/ovs-vsctl'].every((f) => fs.existsSync(f));
}

class OvsHost {
  readonly daemons: ChildProcess[] = [];
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly netns: string,
    readonly dir: string,
  ) {
    this.env = { ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_SYSCONFDIR: dir };
  }

  private file = (name: string) => path.join(this.dir, name);

  vsctl(...args: string[]): Promise<string> {
    return must('ovs-vsctl', [`--db=unix:${this.file('db.sock')}`, '--timeout=30', ...args], this.env);
  }

  private daemon(argv: string[]): void {
    const child = spawn('ip', ['netns', 'exec', this.netns, ...argv], { stdio: 'ignore', env: this.env });
    this.daemons.push(child);
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    await must('ovsdb-tool', ['create', this.file('conf.db'), SCHEMA], this.env);
    this.daemon(['ovsdb-server', this.file('conf.db'), `--remote=punix:${this.file('db.sock')}`, `--unixctl=${this.file('ovsdb.ctl')}`, `--pidfile=${this.file('ovsdb.pid')}`, `--log-file=${this.file('ovsdb.log')}`]);
    await pollUntil(`ovsdb-server in ${this.netns}`, () => (fs.existsSync(this.file('db.sock')) ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
    // Userspace TSO is read once at vswitchd's start.
    await this.vsctl('--no-wait', 'init', '--', 'set', 'Open_vSwitch', '.', 'other_config:userspace-tso-enable=true');
    this.daemon(['ovs-vswitchd', `unix:${this.file('db.sock')}`, `--unixctl=${this.file('vswitchd.ctl')}`, `--pidfile=${this.file('vswitchd.pid')}`, `--log-file=${this.file('vswitchd.log')}`]);
  }

  async stop(): Promise<void> {
    for (const d of this.daemons.reverse()) await stopChild(d, 5_000);
  }
}

/** Builds both OVS paths in namespaces `${prefix}...`; on failure stops what it started and rethrows. */
export async function buildOvs(prefix: string): Promise<OvsPaths> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-bench-ovs-'));
  const ns = { ha: `${prefix}ha`, hb: `${prefix}hb`, wa: `${prefix}wa`, wb: `${prefix}wb`, wc: `${prefix}wc` };
  const hosts = [new OvsHost(ns.ha, path.join(dir, 'ha')), new OvsHost(ns.hb, path.join(dir, 'hb'))] as const;
  const stop = async () => {
    for (const h of hosts) await h.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await addNetns(...Object.values(ns));
    const ul: [string, string] = ['10.250.9.1', '10.250.9.2'];
    // The underlay addresses move to br-phy below: ul0 carries none.
    await underlay(prefix, [ns.ha, ns.hb], ul, true);
    for (const [i, h] of hosts.entries()) {
      await ipn(h.netns, 'addr', 'flush', 'dev', 'ul0');
      await h.start();
      await h.vsctl('add-br', 'br-phy', '--', 'set', 'bridge', 'br-phy', 'datapath_type=netdev', '--', 'add-port', 'br-phy', 'ul0');
      await ipn(h.netns, 'addr', 'add', `${ul[i]}/24`, 'dev', 'br-phy');
      await ipn(h.netns, 'link', 'set', 'br-phy', 'up');
      await h.vsctl('add-br', 'br-int', '--', 'set', 'bridge', 'br-int', 'datapath_type=netdev');
      await h.vsctl('add-port', 'br-int', 'vx0', '--', 'set', 'interface', 'vx0', 'type=vxlan', `options:remote_ip=${ul[1 - i]}`, `options:local_ip=${ul[i]}`, 'options:key=100');
    }
    const workloads = [
      { w: ns.wa, host: hosts[0], port: 'wla', ip: '10.204.0.2', mtu: 1450, crossHost: true },
      { w: ns.wb, host: hosts[1], port: 'wlb', ip: '10.204.0.3', mtu: 1450, crossHost: true },
      { w: ns.wc, host: hosts[0], port: 'wlc', ip: '10.204.0.4', mtu: 1450, crossHost: false },
    ];
    for (const x of workloads) {
      await ipn(x.w, 'link', 'add', 'eth0', 'mtu', String(x.mtu), 'type', 'veth', 'peer', 'name', x.port, 'netns', x.host.netns);
      await ipn(x.w, 'addr', 'add', `${x.ip}/24`, 'dev', 'eth0');
      await ipn(x.w, 'link', 'set', 'eth0', 'up');
      await ipn(x.host.netns, 'link', 'set', x.port, 'up');
      if (x.crossHost) await must('ip', ['netns', 'exec', x.w, 'ethtool', '-K', 'eth0', 'tx', 'off']);
      await x.host.vsctl('add-port', 'br-int', x.port);
    }
    return {
      crossHost: { client: ns.wa, server: ns.wb, serverIp: '10.204.0.3' },
      // From wc (offloads on) to wa: the data flows from the workload that keeps TSO.
      sameHost: { client: ns.wc, server: ns.wa, serverIp: '10.204.0.2' },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
