/**
 * Authentication and per-task scopes (SPEC §6). A JWT — HS256 with
 * `AUTH_JWT_SECRET`, or an asymmetric algorithm with `AUTH_JWT_PUBLIC_KEY` or
 * `AUTH_JWKS_URL` — from `Authorization: Bearer`, the `access_token` query
 * parameter, or the `AUTH_COOKIE` cookie. Its `taskstream` claim lists
 * `agentId/taskId` patterns per action; `*` matches within one segment.
 * Verification is hono's; nothing here does crypto.
 */
import { Redacted, Result, Schema } from "effect"
import type { Context } from "hono"
import { getCookie } from "hono/cookie"
import { verify, verifyWithJwks } from "hono/jwt"
import type { Settings } from "../config.ts"
import type { LogLine } from "../observability/log.ts"
import { Metrics, type MetricsRecorder } from "../observability/metrics.ts"
import { type ApiError, apiError } from "./errors.ts"
import { jwksCache, JwksUnavailable } from "./jwks.ts"

export type Action = "subscribe" | "publish" | "control"

export interface Principal {
  /** Who the bearer is: the token's `sub`, or the client address when the gateway runs open. */
  readonly subject: string
  /** When the token expires (ms since epoch); Infinity without one. */
  readonly expiresAt: number
  may(action: Action, agentId: string, taskId: string): boolean
}

export interface Authenticator {
  readonly required: boolean
  /** Verify a token; `anonymous` names the bearer when the gateway runs open. */
  authenticate(token: string | undefined, anonymous: string): Promise<Result.Result<Principal, ApiError>>
}

const Claims = Schema.Struct({
  sub: Schema.optionalKey(Schema.String),
  exp: Schema.optionalKey(Schema.Finite),
  nbf: Schema.optionalKey(Schema.Finite),
  iat: Schema.optionalKey(Schema.Finite),
  taskstream: Schema.optionalKey(
    Schema.Struct({
      subscribe: Schema.optionalKey(Schema.Array(Schema.String)),
      publish: Schema.optionalKey(Schema.Array(Schema.String)),
      control: Schema.optionalKey(Schema.Array(Schema.String))
    })
  )
})
const decodeClaims = Schema.decodeUnknownResult(Claims)

/**
 * Whether `text` matches one segment pattern where `*` stands for any run of
 * characters. The literal pieces between stars are found left to right, each
 * at its first place (greedy is exact for `*`-only globs), so a match costs at
 * most one scan of `text` per piece — never a backtracking search.
 */
const segmentMatches = (pieces: ReadonlyArray<string>, text: string): boolean => {
  if (pieces.length === 1) return text === pieces[0]
  const first = pieces[0]
  const last = pieces[pieces.length - 1]
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false
  let at = first.length
  const end = text.length - last.length
  for (let i = 1; i < pieces.length - 1; i++) {
    if (pieces[i] === "") continue
    const found = text.indexOf(pieces[i], at)
    if (found === -1 || found + pieces[i].length > end) return false
    at = found + pieces[i].length
  }
  return true
}

export type ScopeMatcher = (agentId: string, taskId: string) => boolean

/** `agent-1/job-*` → a matcher of (agentId, taskId); a pattern without exactly one `/` matches nothing. */
export const compileScope = (pattern: string): ScopeMatcher | undefined => {
  const parts = pattern.split("/")
  if (parts.length !== 2 || parts.some((part) => part === "")) return undefined
  const [agent, task] = parts.map((part) => part.split("*"))
  return (agentId, taskId) => segmentMatches(agent, agentId) && segmentMatches(task, taskId)
}

const scopeMatcher = (patterns: ReadonlyArray<string> = []): ScopeMatcher => {
  const compiled = patterns.map(compileScope).filter((matcher): matcher is ScopeMatcher => matcher !== undefined)
  return (agentId, taskId) => compiled.some((matches) => matches(agentId, taskId))
}

const openPrincipal = (subject: string): Principal => ({ subject, expiresAt: Infinity, may: () => true })

/** hono's JWT errors, by class name, as the reason a token was refused. */
const refusalOf = (error: unknown): string => {
  const name = error instanceof Error ? error.name : ""
  if (name === "JwtTokenExpired") return "expired"
  if (name === "JwtTokenNotBefore") return "not_yet_valid"
  if (name === "JwtTokenSignatureMismatched") return "bad_signature"
  if (name === "JwtAlgorithmMismatch" || name === "JwtAlgorithmNotAllowed" || name === "JwtSymmetricAlgorithmNotAllowed") {
    return "wrong_algorithm"
  }
  if (name === "JwtTokenIssuer" || name === "JwtTokenAudience") return "wrong_issuer_or_audience"
  return "invalid"
}

const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const

export const authConfigured = (config: Settings): boolean =>
  config.authJwtSecret !== undefined || config.authJwtPublicKey !== undefined || config.authJwksUrl !== undefined

/** The start-up decision: a verifier, or running open (refused in production unless AUTH=none). */
export const makeAuthenticator = (config: Settings, logLine: LogLine): Result.Result<Authenticator, string> => {
  if (!authConfigured(config)) {
    if (config.auth === "jwt") return Result.fail("AUTH=jwt needs AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL")
    if (config.nodeEnv === "production" && config.auth !== "none") {
      return Result.fail(
        "refusing to start without authentication in production: set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL, or AUTH=none to run open on purpose"
      )
    }
    return Result.succeed({ required: false, authenticate: (_token, anonymous) => Promise.resolve(Result.succeed(openPrincipal(anonymous))) })
  }
  // Times are checked below, with AUTH_CLOCK_SKEW_S of leeway (hono's checks have none).
  const verification = {
    exp: false,
    nbf: false,
    iat: false,
    ...(config.authJwtIssuer === undefined ? {} : { iss: config.authJwtIssuer }),
    ...(config.authJwtAudience === undefined ? {} : { aud: config.authJwtAudience })
  }
  const keysFor = config.authJwksUrl === undefined ? undefined : jwksCache(config.authJwksUrl, config.authJwksTimeoutMs, logLine)
  const check = async (token: string) => {
    if (config.authJwtSecret !== undefined) return verify(token, Redacted.value(config.authJwtSecret), { alg: "HS256", ...verification })
    if (config.authJwtPublicKey !== undefined) {
      return verify(token, config.authJwtPublicKey, { alg: config.authJwtAlgorithm, ...verification })
    }
    const kid = (() => {
      try {
        return (JSON.parse(atob(token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/"))) as { kid?: string }).kid
      } catch {
        return undefined
      }
    })()
    const keys = await keysFor!(kid)
    return verifyWithJwks(token, { keys: keys as never, allowedAlgorithms: ASYMMETRIC, verification })
  }
  return Result.succeed({
    required: true,
    authenticate: async (token) => {
      if (token === undefined || token === "") return Result.fail(apiError("unauthorized", "a token is required", "token"))
      let payload: unknown
      try {
        payload = await check(token)
      } catch (error) {
        if (error instanceof JwksUnavailable) return Result.fail(apiError("auth_unavailable", `${error.message}; retry shortly`, "token"))
        const reason = refusalOf(error)
        return Result.fail(apiError("unauthorized", `the token was refused: ${reason.replace(/_/g, " ")}`, "token"))
      }
      const claims = decodeClaims(payload)
      if (Result.isFailure(claims)) return Result.fail(apiError("unauthorized", "the token's claims are malformed", "token"))
      const { sub, exp, nbf, iat, taskstream = {} } = claims.success
      const now = Date.now() / 1000
      const skew = config.authClockSkewSeconds
      const reason = exp !== undefined && exp + skew <= now
        ? "expired"
        : (nbf !== undefined && nbf > now + skew) || (iat !== undefined && iat > now + skew)
        ? "not yet valid"
        : exp === undefined && config.authRequireExp
        ? "no exp claim"
        : sub === undefined && config.authRequireSub
        ? "no sub claim"
        : undefined
      if (reason !== undefined) return Result.fail(apiError("unauthorized", `the token was refused: ${reason}`, "token"))
      const scopes = {
        subscribe: scopeMatcher(taskstream.subscribe),
        publish: scopeMatcher(taskstream.publish),
        control: scopeMatcher(taskstream.control)
      }
      return Result.succeed({
        subject: sub ?? "unknown",
        // A stream closes at `exp`; one accepted only within the clock-skew leeway lives to the leeway's end.
        expiresAt: exp === undefined ? Infinity : exp > now ? exp * 1000 : (exp + skew) * 1000,
        may: (action, agentId, taskId) => scopes[action](agentId, taskId)
      })
    }
  })
}

export interface Credential {
  readonly token: string | undefined
  /** The browser attached it by itself: it proves nothing about which site sent the request. */
  readonly fromCookie: boolean
}

/** The bearer token of a request: header, then `access_token` query parameter, then cookie. */
export const credentialOf = (c: Context, cookie: string): Credential => {
  const header = c.req.header("authorization")
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)$/i.exec(header)
    if (match) return { token: match[1], fromCookie: false }
  }
  const query = c.req.query("access_token")
  if (query) return { token: query, fromCookie: false }
  const fromCookie = getCookie(c, cookie)
  return fromCookie ? { token: fromCookie, fromCookie: true } : { token: undefined, fromCookie: false }
}

export const tokenOf = (c: Context, cookie: string): string | undefined => credentialOf(c, cookie).token

/**
 * Whether a request may act on cookie credentials: reads (CORS decides who may
 * see them), requests without an Origin (not from a browser), and requests from
 * this host or an origin listed in CORS_ORIGINS. Anything else is another site
 * riding on the user's cookie (CSRF, cross-site WebSocket hijacking).
 */
export const cookieUsableFrom = (c: Context, corsOrigins: string): boolean => {
  const upgrade = c.req.header("upgrade")?.toLowerCase() === "websocket"
  if ((c.req.method === "GET" || c.req.method === "HEAD") && !upgrade) return true
  const origin = c.req.header("origin")
  if (origin === undefined) return true
  try {
    if (new URL(origin).host === c.req.header("host")) return true
  } catch {
    return false
  }
  return corsOrigins.split(",").map((listed) => listed.trim()).includes(origin)
}

/** Count and log a refused request (the token itself is never logged). */
export const noteRefusal = (
  c: Context,
  { logLine, metrics }: { readonly logLine: LogLine; readonly metrics: MetricsRecorder },
  error: ApiError,
  subject?: string
): void => {
  const reason = error.code === "forbidden"
    ? "out_of_scope"
    : error.code === "auth_unavailable"
    ? "jwks unavailable"
    : error.message.replace(/^the token was refused: /, "")
  metrics.record(Metrics.authFailures, 1, { reason: reason.replace(/ /g, "_") })
  logLine("warn", "request refused", { status: error.code, reason, path: c.req.path, subject, requestId: c.get("requestId") })
}
