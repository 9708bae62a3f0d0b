/**
 * What every ingest path (CloudEvents over HTTP, the broker bridge) turns a
 * message into: the task it names and a validated draft. Errors name the
 * attribute or field at fault, as the HTTP API's do.
 */
import { createHash } from "node:crypto"
import type { EventDraft, InvalidEvent } from "../events/draft.ts"
import type { TaskRef } from "../log/EventLog.ts"

export interface Published {
  readonly task: TaskRef
  readonly draft: EventDraft
}

export type { InvalidEvent }

const JSON_MEDIA_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i

/** `application/json` or any `application/…+json`, with parameters. */
export const isJsonMediaType = (contentType: string): boolean => JSON_MEDIA_TYPE.test(contentType)

/** Join a batch prefix (`[2]`) and a field name into the path an error names. */
export const fieldAt = (prefix: string, field: string): string => [prefix, field].filter((part) => part !== "").join(".")

/**
 * An idempotency key derived from what identifies a message: short and of
 * safe characters whatever the input (CloudEvents ids and sources are free text).
 */
export const derivedKey = (kind: "ce" | "msg", ...parts: ReadonlyArray<string>): string =>
  `${kind}:${createHash("sha256").update(JSON.stringify(parts)).digest("hex")}`
