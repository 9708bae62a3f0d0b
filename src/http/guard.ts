/**
 * The door of every task route: who is asking (token or client address) and
 * whether their scopes allow the action on this task. 401 without a valid
 * token, 403 out of scope — counted and logged, never with the token.
 */
import { Result } from "effect"
import type { Context } from "hono"
import { type Action, cookieUsableFrom, credentialOf, noteRefusal, type Principal } from "./auth.ts"
import type { RouteDeps } from "./deps.ts"
import { type ApiError, apiError, errorResponse } from "./errors.ts"
import type { TaskPath } from "./params.ts"

/**
 * The client's address: from the runtime, or behind a trusted proxy the
 * right-most X-Forwarded-For hop — the one the proxy itself appended. Hops to
 * its left were written by the client and prove nothing.
 */
export const clientAddress = (c: Context, trustProxy: boolean): string => {
  if (trustProxy) {
    const forwarded = c.req.header("x-forwarded-for")?.split(",").at(-1)?.trim()
    if (forwarded) return forwarded
  }
  return (c.env as { clientAddress?: string } | undefined)?.clientAddress ?? "unknown"
}

export const authenticate = async (c: Context, deps: RouteDeps): Promise<Result.Result<Principal, Response>> => {
  const credential = credentialOf(c, deps.config.authCookie)
  // A cookie, or an open gateway's mere reachability, is ambient authority: another site's page must not ride on it.
  const ambient = deps.auth.required ? credential.fromCookie : true
  if (ambient && !cookieUsableFrom(c, deps.config.corsOrigins)) {
    const error = deps.auth.required
      ? apiError("forbidden", "cookie credentials are not accepted from another site; send the token as Authorization: Bearer or access_token", "origin")
      : apiError("forbidden", "this gateway runs without authentication and refuses WebSockets and changes from another site's page; list the site in CORS_ORIGINS", "origin")
    noteRefusal(c, deps, error)
    return Result.fail(errorResponse(c, error))
  }
  const principal = await deps.auth.authenticate(credential.token, clientAddress(c, deps.config.trustProxy))
  if (Result.isSuccess(principal)) return Result.succeed(principal.success)
  noteRefusal(c, deps, principal.failure)
  return Result.fail(errorResponse(c, principal.failure))
}

/** The error for a stream or socket opened on an instance that is shutting down. */
export const drainingError: ApiError = apiError("draining", "this instance is shutting down; reconnect")

/** The error for a connection refused by a limit (SPEC §6). */
export const admissionError = (limit: "max_connections" | "max_connections_per_subject"): ApiError =>
  limit === "max_connections"
    ? apiError("too_many_connections", "this instance is at MAX_CONNECTIONS")
    : apiError("too_many_connections_per_subject", "too many open connections for this subject (MAX_CONNECTIONS_PER_SUBJECT)")

export const guard = async (
  c: Context,
  deps: RouteDeps,
  action: Action,
  task: TaskPath
): Promise<Result.Result<Principal, Response>> => {
  const principal = await authenticate(c, deps)
  if (Result.isFailure(principal) || principal.success.may(action, task.agentId, task.taskId)) return principal
  const error = apiError("forbidden", `the token does not allow ${action} on ${task.agentId}/${task.taskId}`)
  noteRefusal(c, deps, error, principal.success.subject)
  return Result.fail(errorResponse(c, error))
}
