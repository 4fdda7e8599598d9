// A small client of the config API for the CLI (and the lab): JSON in, JSON out, and
// errors turned into one readable line.

import { HttpError, requestJson } from '../util/http-client.js';

export class CliError extends Error {}

type Json = Record<string, unknown>;

export class ApiClient {
  constructor(
    readonly base: string,
    private readonly what = 'the Cirrus API',
    private readonly hint = "is 'cirrus up' running? (set CIRRUS_API to point elsewhere)",
  ) {}

  static fromEnv(override?: string): ApiClient {
    return new ApiClient((override ?? process.env['CIRRUS_API'] ?? 'http://127.0.0.1:8082').replace(/\/+$/, ''));
  }

  async request<T = Json>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await requestJson<T>(this.base, method, path, body);
    } catch (e) {
      if (e instanceof HttpError) throw new CliError(e.message);
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new CliError(`cannot reach ${this.what} at ${this.base} (${code}); ${this.hint}`);
    }
  }

  get<T = Json>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T = Json>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  /** The uuid of an fq_name, or undefined when it does not exist. */
  async uuidOf(type: string, fqName: string[]): Promise<string | undefined> {
    try {
      return (await this.post<{ uuid: string }>('/fqname-to-id', { type, fq_name: fqName })).uuid;
    } catch (e) {
      if (e instanceof CliError && e.message.endsWith('(HTTP 404)')) return undefined;
      throw e;
    }
  }

  async read(type: string, uuid: string): Promise<Json> {
    return (await this.get<Json>(`/${type}/${uuid}`))[type] as Json;
  }

  async create(type: string, obj: Json): Promise<Json> {
    return (await this.post<Json>(`/${type}s`, { [type]: obj }))[type] as Json;
  }

  /** PUT: the given properties replace theirs; the rest is kept. */
  update(type: string, uuid: string, props: Json): Promise<Json> {
    return this.request('PUT', `/${type}/${uuid}`, { [type]: props });
  }

  delete(type: string, uuid: string): Promise<Json> {
    return this.request('DELETE', `/${type}/${uuid}`);
  }

  async listDetail(type: string, query = ''): Promise<Json[]> {
    const res = await this.get<Json>(`/${type}s?detail=True${query ? `&${query}` : ''}`);
    return (res[`${type}s`] as Json[]).map((e) => e[type] as Json);
  }
}
