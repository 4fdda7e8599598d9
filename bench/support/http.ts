// A minimal JSON client over node:http with one keep-alive Agent: every worker reuses
// its connection, so the benchmark measures request handling, not TCP set-up. node:http
// rather than fetch/undici to stay free of dependencies and of undici's own pooling, and
// not src/util/http-client.ts: that one resolves its target per request, which costs the
// load generator (sharing the machine's two cores) a third more CPU per request.

import http from 'node:http';

export interface Answer {
  status: number;
  body: unknown;
  /** Wall time from issuing the request to the last byte of the answer, in ms. */
  ms: number;
}

export class JsonClient {
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(base: string, connections: number) {
    const u = new URL(base);
    this.host = u.hostname;
    this.port = Number(u.port);
    // One socket per in-flight worker; never more, so no request waits on a new connect.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  }

  request(method: string, path: string, body?: unknown): Promise<Answer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request({ host: this.host, port: this.port, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const ms = performance.now() - t0;
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // Left as text: the caller reports it when the status is not 2xx.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, ms });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Throws with the method, path, status and body unless the answer is 2xx. */
export function expectOk(what: string, a: Answer): Record<string, any> {
  if (a.status < 200 || a.status >= 300) throw new Error(`${what}: HTTP ${a.status}: ${typeof a.body === 'string' ? a.body : JSON.stringify(a.body)}`);
  return a.body as Record<string, any>;
}
