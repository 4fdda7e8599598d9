// Port registrations of this host, persisted one JSON file per port (as TF's agent does)
// so that they survive an agent restart. Files are replaced atomically (write + rename).

import fs from 'node:fs';
import path from 'node:path';

export interface PortRegistration {
  /** The virtual-machine-interface's uuid. */
  vmiUuid: string;
  /**
   * create: the agent makes the veth pair and configures the workload side;
   * adopt: the caller made the interface (TF's port API, the seed's manual steps).
   */
  mode: 'create' | 'adopt';
  /** create: the workload's namespace (a name under /run/netns or a path). */
  netns?: string;
  /** create: the interface name inside the namespace. */
  ifname?: string;
  /** adopt: the existing host-side interface (TF's system-name). */
  hostIf?: string;
  /** create: leave the workload's address configuration to its own DHCP client. */
  dhcp?: boolean;
  /** TF's enable-port/disable-port. */
  enabled: boolean;
  /** What a TF caller sent, returned by GET /port/<uuid>. */
  tf?: Record<string, unknown>;
  createdAt: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class PortRegistry {
  private readonly ports = new Map<string, PortRegistration>();

  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    for (const f of fs.readdirSync(dir)) {
      if (!f.endsWith('.json') || !UUID.test(f.slice(0, -5))) continue;
      try {
        const reg = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as PortRegistration;
        this.ports.set(reg.vmiUuid, reg);
      } catch {
        // A torn or foreign file: skip it rather than refuse to start.
      }
    }
  }

  list(): PortRegistration[] {
    return [...this.ports.values()];
  }

  get(vmiUuid: string): PortRegistration | undefined {
    return this.ports.get(vmiUuid);
  }

  put(reg: PortRegistration): void {
    const file = path.join(this.dir, `${reg.vmiUuid}.json`);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(reg, null, 2));
    fs.renameSync(tmp, file);
    this.ports.set(reg.vmiUuid, reg);
  }

  delete(vmiUuid: string): boolean {
    fs.rmSync(path.join(this.dir, `${vmiUuid}.json`), { force: true });
    return this.ports.delete(vmiUuid);
  }
}
