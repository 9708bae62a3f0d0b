/**
 * Untrusted JSON text (request bodies, WebSocket frames) parsed only after a
 * linear scan has bounded its nesting: `JSON.parse` and every walk over the
 * result recurse, so a 200 KB body of `[[[[…` would otherwise cost a stack
 * overflow (a 500) and block the event loop. The Lua append script's JSON
 * decoder refuses depth over 1000 too; the limit here is far below it.
 */
import { Result } from "effect"
import { isJsonMediaType } from "../ingest/published.ts"
import { type ApiError, apiError } from "./errors.ts"

/**
 * The 415 for a request whose body is not declared JSON. Browsers send
 * `text/plain` and form bodies cross-site without asking (no CORS preflight);
 * requiring JSON keeps another site's page from changing anything.
 * `bodyless`: true when the request has no body; then it may also have no content type.
 */
export const unsupportedContentType = (contentType: string | undefined, bodyless = false): ApiError | undefined => {
  if (contentType === undefined ? bodyless : isJsonMediaType(contentType)) return undefined
  return apiError("unsupported_media_type", `content-type must be application/json, not '${(contentType ?? "").slice(0, 64)}'`, "content-type")
}

/** How deep objects and arrays may nest in any JSON a client sends. */
export const MAX_JSON_DEPTH = 64

/** Whether `text` opens more than `max` nested objects/arrays (brackets inside strings do not count). */
export const nestingExceeds = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === 92) i++ // backslash: skip the escaped character
      else if (code === 34) inString = false
    } else if (code === 34) inString = true
    else if (code === 123 || code === 91) {
      if (++depth > max) return true
    } else if (code === 125 || code === 93) depth--
  }
  return false
}

/** Parse a request body; `field` names it in the error (`body`, or a frame). */
export const parseJson = (text: string, field = "body"): Result.Result<unknown, ApiError> => {
  if (nestingExceeds(text, MAX_JSON_DEPTH)) {
    return Result.fail(apiError("invalid_json", `${field} nests objects or arrays deeper than ${MAX_JSON_DEPTH} levels`, field))
  }
  try {
    return Result.succeed(JSON.parse(text))
  } catch (error) {
    return Result.fail(apiError("invalid_json", `${field} is not JSON: ${(error as Error).message}`, field))
  }
}
