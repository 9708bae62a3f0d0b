/**
 * The JWKS of `AUTH_JWKS_URL`, fetched for the verifier: kept five minutes,
 * fetched by one request at a time however many tokens wait for it (single
 * flight), cut off after `AUTH_JWKS_TIMEOUT_MS`, and after a failure not
 * fetched again before a back-off (1 s doubling to 60 s) — a slow or broken
 * JWKS endpoint never hangs requests nor gets a fetch per request. A token
 * naming a key id the set lacks (a rotation) refetches at most every 10 s.
 * While a refresh fails the last good set keeps serving; with none yet,
 * verification fails with `JwksUnavailable`.
 */
import type { LogLine } from "../observability/log.ts"

export type Jwk = Record<string, unknown>

export class JwksUnavailable extends Error {
  override readonly name = "JwksUnavailable"
}

const FRESH_MS = 300_000
const UNKNOWN_KID_REFETCH_MS = 10_000
const BACKOFF_MIN_MS = 1000
const BACKOFF_MAX_MS = 60_000

export const jwksCache = (url: string, timeoutMs: number, logLine: LogLine) => {
  let keys: Array<Jwk> | undefined
  let fetchedAt = 0
  let inFlight: Promise<Array<Jwk>> | undefined
  let failures = 0
  let retryAt = 0

  const fetchKeys = async (): Promise<Array<Jwk>> => {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    if (!response.ok) throw new Error(`answered ${response.status}`)
    const body = (await response.json()) as { keys?: unknown }
    if (!Array.isArray(body.keys)) throw new Error("the document has no keys array")
    return body.keys as Array<Jwk>
  }

  const refresh = (): Promise<Array<Jwk>> =>
    (inFlight ??= fetchKeys().then(
      (fetched) => {
        if (failures > 0) logLine("info", "JWKS fetched again", { url })
        keys = fetched
        fetchedAt = Date.now()
        failures = 0
        retryAt = 0
        return fetched
      },
      (error: unknown) => {
        const delay = Math.min(BACKOFF_MIN_MS * 2 ** failures, BACKOFF_MAX_MS)
        failures++
        retryAt = Date.now() + delay
        const reason = error instanceof Error && error.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : String((error as Error)?.message ?? error)
        logLine("error", "JWKS fetch failed", { url, error: reason, retryInMs: delay, keepsLastKeys: keys !== undefined })
        if (keys !== undefined) return keys
        throw new JwksUnavailable(`the JWKS at ${url} is unavailable (${reason})`)
      }
    ).finally(() => {
      inFlight = undefined
    }))

  /** The keys to verify a token whose header names `kid`. */
  return (kid: string | undefined): Promise<Array<Jwk>> => {
    const now = Date.now()
    if (inFlight !== undefined) return inFlight
    const backingOff = now < retryAt
    if (keys === undefined) {
      return backingOff ? Promise.reject(new JwksUnavailable(`the JWKS at ${url} is unavailable; retrying`)) : refresh()
    }
    if (backingOff) return Promise.resolve(keys)
    const stale = now - fetchedAt > FRESH_MS
    const unknownKid = kid !== undefined && !keys.some((key) => key.kid === kid) && now - fetchedAt > UNKNOWN_KID_REFETCH_MS
    return stale || unknownKid ? refresh() : Promise.resolve(keys)
  }
}
