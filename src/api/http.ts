// Small HTTP helpers shared by the API routes.

import type { FastifyRequest } from 'fastify';

/** http://host:port as the client addressed us: hrefs point back where it came from. */
export function baseUrl(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? 'localhost'}`;
}

/**
 * Error body. `message` carries TF's wording (contrail-api-cli parses it); keystoneauth-
 * based clients read `error.message`, others the raw text, which contains it too.
 */
export function errorBody(code: number, message: string, field?: string, extra?: Record<string, unknown>) {
  return { error: { code, message, ...(field ? { field } : {}), ...extra } };
}
