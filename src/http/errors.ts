/**
 * Every error a client of the HTTP API can get: a stable `code`, its status,
 * and a message naming the bad field or setting. The README's error table
 * mirrors this one.
 */
import type { Context } from "hono"
import type { ContentfulStatusCode } from "hono/utils/http-status"

export const ErrorCodes = {
  invalid_id: 400,
  invalid_query: 400,
  invalid_json: 400,
  invalid_event: 400,
  // POST …/ag-ui: the body is not an AG-UI RunAgentInput.
  invalid_run_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  task_agent_mismatch: 409,
  task_ended: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  // WebSocket protocol errors (SPEC §4.3): sent in `error` frames; the status is nominal.
  invalid_frame: 400,
  unknown_op: 400,
  unknown_sub: 404,
  duplicate_sub: 409,
  too_many_subscriptions: 429,
  // GET /api/v1/ws without a WebSocket upgrade.
  upgrade_required: 426,
  too_many_connections_per_subject: 429,
  rate_limited: 429,
  too_many_tasks: 429,
  too_many_connections: 503,
  too_many_demos: 429,
  log_unavailable: 503,
  // AUTH_JWKS_URL does not answer and no key set was fetched yet: the token cannot be checked now.
  auth_unavailable: 503,
  // REDIS_WAIT_REPLICAS not reached within REDIS_WAIT_TIMEOUT_MS: retry with the same idempotency key.
  replication_timeout: 503,
  draining: 503,
  internal: 500
} as const satisfies Record<string, ContentfulStatusCode>

export type ErrorCode = keyof typeof ErrorCodes

export interface ApiError {
  readonly code: ErrorCode
  readonly message: string
  /** Seconds to wait before retrying (sent as Retry-After). */
  readonly retryAfter?: number
  /** The request field at fault: a query parameter, a path id, or a path into the body like `[2].data.model`. */
  readonly field?: string
}

export const apiError = (code: ErrorCode, message: string, field?: string): ApiError =>
  field === undefined ? { code, message } : { code, message, field }

/** How long a client should wait before retrying while the log is unavailable. */
export const RETRY_AFTER_SECONDS = 1

export const errorResponse = (c: Context, error: ApiError): Response => {
  const status = ErrorCodes[error.code]
  const retryAfter = error.retryAfter ?? (status === 503 || status === 429 ? RETRY_AFTER_SECONDS : undefined)
  if (retryAfter !== undefined) c.header("retry-after", String(retryAfter))
  const { retryAfter: _, ...body } = error
  return c.json(body, status)
}
