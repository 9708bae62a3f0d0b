/**
 * The publisher SDK: what a TypeScript workflow imports to publish its events
 * (SPEC §3, §5). Two transports with one interface — straight to Redis
 * through the append script, or to a gateway over HTTP. Events are validated
 * here first, with the same registry as the gateway, so a bad event fails in
 * the workflow with the field named.
 */
import { readFileSync } from "node:fs"
import { Result, Stream } from "effect"
import type { Cluster, Redis } from "ioredis"
import type { ControlCommand } from "../events/control.ts"
import { parseCustomTypes } from "../events/customTypes.ts"
import { decodeDraft, type EventDraft } from "../events/draft.ts"
import { builtinRegistry, EventRegistry, type EventType, type PayloadOf } from "../events/registry.ts"
import {
  type AppendSettings,
  appendErrorOf,
  defineScripts,
  runAppend,
  touchTaskIndex
} from "../log/appendScript.ts"
import { type AppendError, describeAppendError } from "../log/EventLog.ts"
import { RedisCommandReader } from "../log/controlStream.ts"
import { STORAGE_DEFAULTS } from "../limits.ts"
import { blockingDuplicate, closing, createClient, isCluster, type RedisClient } from "../log/redisTarget.ts"
import { parseRedisUrl } from "../redisUrl.ts"

export type { CommandKind, ControlCommand } from "../events/control.ts"
export type { EventType, PayloadOf } from "../events/registry.ts"

export interface TaskRef {
  readonly agentId: string
  readonly taskId: string
}

export interface PublishOptions {
  /** Publishing twice with the same key (within IDEMPOTENCY_S) stores the event once and returns its first id. */
  readonly idempotencyKey?: string
  /** When the event happened; the log's clock when absent. */
  readonly time?: string | Date
}

export interface EventInput<T extends EventType = EventType> extends PublishOptions {
  readonly type: T
  readonly data: PayloadOf<T>
}

/** An event of a custom type (loaded with `eventTypesFile`); its data is checked against the file's schema. */
export interface CustomEventInput extends PublishOptions {
  readonly type: string
  readonly data: Readonly<Record<string, unknown>>
}

export type PublishErrorCode =
  | "invalid_event"
  | "task_ended"
  | "task_agent_mismatch"
  | "payload_too_large"
  | "unavailable"
  | "replication_timeout"
  | "rejected"
  | "invalid_custom_types"

/** The codes `retry` tries again: the event may or may not be stored, so retries carry the same keys. */
const RETRYABLE: ReadonlySet<PublishErrorCode> = new Set(["unavailable", "replication_timeout"])

export class PublishError extends Error {
  override readonly name = "PublishError"
  constructor(readonly code: PublishErrorCode, message: string, readonly field?: string) {
    super(message)
  }
}

export interface Publisher {
  /** Append one event; resolves to its id (null for an ephemeral event such as a token chunk). */
  publish<T extends EventType>(task: TaskRef, type: T, data: PayloadOf<T>, options?: PublishOptions): Promise<string | null>
  /** Append one event of a custom type (see `eventTypesFile`); a built-in name takes the typed form above. */
  publish<N extends string>(
    task: TaskRef,
    type: N extends EventType ? never : N,
    data: Readonly<Record<string, unknown>>,
    options?: PublishOptions
  ): Promise<string | null>
  /** Append several events, all or nothing. */
  publishBatch(task: TaskRef, events: ReadonlyArray<EventInput | CustomEventInput>): Promise<Array<string | null>>
  close(): Promise<void>
}

const toDrafts = (registry: EventRegistry, events: ReadonlyArray<EventInput | CustomEventInput>): Array<EventDraft> =>
  events.map((event, i) => {
    const draft = decodeDraft(
      registry,
      {
        type: event.type,
        data: event.data,
        ...(event.time === undefined ? {} : { time: event.time instanceof Date ? event.time.toISOString() : event.time }),
        ...(event.idempotencyKey === undefined ? {} : { idempotency_key: event.idempotencyKey })
      },
      events.length > 1 ? `[${i}]` : ""
    )
    if (Result.isFailure(draft)) {
      throw new PublishError("invalid_event", `${draft.failure.field}: ${draft.failure.message}`, draft.failure.field)
    }
    return draft.success
  })

export interface RetryOptions {
  /** Give up (with the last `unavailable` error) once this long has passed since the first attempt. Default 30000. */
  readonly maxElapsedMs?: number
  /** The first wait between attempts, doubled after each until `maxDelayMs`. Defaults 100 and 2000. */
  readonly minDelayMs?: number
  readonly maxDelayMs?: number
}

export interface PublisherOptions {
  /**
   * Retry a publish that failed because the log (or the gateway) was unreachable.
   * Every durable event without an idempotency key gets a generated one first,
   * so an attempt that was stored but whose reply was lost is not stored twice.
   * Straight to Redis, a batch keyed only that way keeps its keys for the retry
   * window (plus a minute), not IDEMPOTENCY_S: one short-lived key per event.
   */
  readonly retry?: boolean | RetryOptions
  /**
   * The gateway's `EVENT_TYPES_FILE` (SPEC §10.2): this publisher's registry is
   * the built-ins plus its custom types (its own, not shared with a gateway or
   * another publisher in the process), so they are validated here, declared to
   * the append script (needed on a Redis Cluster) and set the task's status
   * when terminal. A file that cannot be read or a bad entry throws
   * `PublishError("invalid_custom_types")` naming it.
   */
  readonly eventTypesFile?: string | URL
}

/** The publisher's registry, with the types of `eventTypesFile`: loaded before the publisher opens anything. */
const registryOf = ({ eventTypesFile: file }: PublisherOptions): EventRegistry => {
  if (file === undefined) return builtinRegistry
  let text: string
  try {
    text = readFileSync(file, "utf8")
  } catch (error) {
    throw new PublishError("invalid_custom_types", `eventTypesFile: cannot read ${String(file)}: ${(error as Error).message}`, "eventTypesFile")
  }
  const parsed = parseCustomTypes(text)
  if (Result.isFailure(parsed)) {
    throw new PublishError("invalid_custom_types", `eventTypesFile ${String(file)}: ${parsed.failure}`, "eventTypesFile")
  }
  return new EventRegistry(parsed.success)
}

/** How a transport appends validated drafts. `keepKeysSeconds` shortens how long their idempotency keys are kept, where it can. */
export type Send = (task: TaskRef, drafts: Array<EventDraft>, keepKeysSeconds?: number) => Promise<Array<string | null>>

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** 96 random bits, base64url: as collision-proof as a UUID for one task, in half the bytes. */
const generatedKey = (): string => {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
}

/**
 * Send, retrying the failures that say "try again" (`unavailable`, `replication_timeout`) with
 * exponential backoff until the time budget is spent; the same idempotency keys go every time.
 */
const retrying = (registry: EventRegistry, send: Send, options: RetryOptions): Send => async (task, drafts) => {
  const maxElapsedMs = options.maxElapsedMs ?? 30_000
  const chosen = drafts.some((draft) => draft.idempotencyKey !== undefined)
  const keyed = drafts.map((draft) =>
    draft.idempotencyKey !== undefined || registry.isEphemeral(draft.type) ? draft : { ...draft, idempotencyKey: generatedKey() }
  )
  // Generated keys only guard this call's retries; keys the caller chose keep their full lifetime.
  const keepKeysSeconds = chosen ? undefined : Math.ceil(maxElapsedMs / 1000) + 60
  const deadline = Date.now() + maxElapsedMs
  let delay = options.minDelayMs ?? 100
  for (;;) {
    try {
      return await send(task, keyed, keepKeysSeconds)
    } catch (error) {
      if (!(error instanceof PublishError) || !RETRYABLE.has(error.code) || Date.now() + delay > deadline) throw error
    }
    await sleep(delay)
    delay = Math.min(delay * 2, options.maxDelayMs ?? 2000)
  }
}

/**
 * A publisher over any transport that appends validated drafts (the SDK's two,
 * and the gateway's in-process one), validating with `registry`.
 */
export const makePublisher = (
  registry: EventRegistry,
  send: Send,
  close: () => Promise<void>,
  options: PublisherOptions = {}
): Publisher => {
  const deliver = options.retry === undefined || options.retry === false
    ? send
    : retrying(registry, send, options.retry === true ? {} : options.retry)
  return {
    publish: async (task: TaskRef, type: string, data: Readonly<Record<string, unknown>>, publishOptions: PublishOptions = {}) =>
      (await deliver(task, toDrafts(registry, [{ ...publishOptions, type, data }])))[0],
    publishBatch: async (task, events) => (events.length === 0 ? [] : deliver(task, toDrafts(registry, events))),
    close
  }
}

/** A control command as the workflow receives it; see docs/control.md for how to answer each. */
export interface ReceivedCommand extends ControlCommand {
  /**
   * Mark it handled: a restarted worker will not get it again. Asking the
   * iterator for the next command acknowledges this one too.
   */
  ack(): Promise<void>
}

export interface CommandOptions {
  /**
   * The reader's name (a Redis consumer group): Redis keeps one position per
   * name. A restarted worker uses the same name to resume after what it
   * acknowledged; another name reads every command independently.
   */
  readonly reader?: string
}

/** A publisher that can also receive the task's control commands. */
export interface WorkflowPublisher extends Publisher {
  /**
   * The task's control commands, oldest unacknowledged first, then new ones
   * as they are queued; endless until the loop breaks or the publisher closes.
   */
  commands(task: TaskRef, options?: CommandOptions): AsyncIterableIterator<ReceivedCommand>
}

export interface RedisPublisher extends WorkflowPublisher {
  /** `commands` as an Effect Stream. */
  commandStream(task: TaskRef, options?: CommandOptions): Stream.Stream<ReceivedCommand, PublishError>
}

export const DEFAULT_READER = "workflow"

/** A refused append as the SDK's error: the gateway's one mapping (describeAppendError), `unavailable` for a log that is away. */
export const publishErrorOf = (error: AppendError): PublishError => {
  const { code, message, field } = describeAppendError(error)
  return new PublishError(code === "log_unavailable" ? "unavailable" : code, message, field)
}

const unavailable = (error: unknown) =>
  error instanceof PublishError ? error : new PublishError("unavailable", error instanceof Error ? error.message : String(error))

export interface RedisPublisherOptions extends Partial<Omit<AppendSettings, "prefix" | "registry">>, PublisherOptions {
  /**
   * A Redis URL — `redis://host:port`, `redis+cluster://host:port,host:port` for a
   * Redis Cluster, `redis+sentinel://host:port,host:port/<master-name>` for Redis
   * Sentinel — or an ioredis `Redis` / `Cluster` the caller owns.
   */
  readonly redis: string | Redis | Cluster
  readonly prefix?: string
}

const ownedClient = (url: string) => {
  const target = parseRedisUrl(url)
  if (typeof target === "string") throw new PublishError("rejected", `redis: ${target}`, "redis")
  const client = createClient(target, { failFast: false })
  // Failures reach the caller as PublishError; ioredis would otherwise print every reconnect error.
  client.on("error", () => {})
  return client
}

/** Publish straight into Redis with the atomic append script; no gateway needed on the path. */
export const redisPublisher = (options: RedisPublisherOptions): RedisPublisher => {
  const registry = registryOf(options)
  const owned = typeof options.redis === "string"
  const redis = typeof options.redis === "string" ? ownedClient(options.redis) : options.redis
  defineScripts(redis)
  const settings: AppendSettings = {
    registry,
    prefix: options.prefix ?? "ts",
    historyMax: options.historyMax ?? STORAGE_DEFAULTS.historyMax,
    retentionSeconds: options.retentionSeconds ?? STORAGE_DEFAULTS.retentionSeconds,
    idempotencySeconds: options.idempotencySeconds ?? STORAGE_DEFAULTS.idempotencySeconds,
    inflightSeconds: options.inflightSeconds ?? STORAGE_DEFAULTS.inflightSeconds,
    taskIndexMax: options.taskIndexMax ?? STORAGE_DEFAULTS.taskIndexMax,
    taskIdleSeconds: options.taskIdleSeconds ?? STORAGE_DEFAULTS.taskIdleSeconds,
    waitReplicas: options.waitReplicas ?? 0,
    waitTimeoutMs: options.waitTimeoutMs ?? STORAGE_DEFAULTS.waitTimeoutMs
  }
  if (settings.waitReplicas! > 0 && isCluster(redis)) {
    throw new PublishError("rejected", "waitReplicas works with a standalone or Sentinel-managed Redis, not a Redis Cluster", "waitReplicas")
  }
  /** The blocking connections of open command readers, cut when the publisher closes. */
  const readers = new Set<RedisClient>()

  async function* commands(task: TaskRef, commandOptions: CommandOptions = {}): AsyncGenerator<ReceivedCommand> {
    const blocking = blockingDuplicate(redis)
    blocking.on("error", () => {})
    readers.add(blocking)
    const source = new RedisCommandReader(blocking, redis, settings.prefix, task, commandOptions.reader ?? DEFAULT_READER)
    try {
      for (;;) {
        const command = await source.next().catch((error) => Promise.reject(unavailable(error)))
        let acked: Promise<unknown> | undefined
        const received: ReceivedCommand = {
          ...command,
          ack: () => (acked ??= source.ack(command.id)).then(() => undefined, (error) => Promise.reject(unavailable(error)))
        }
        yield received
        await received.ack()
      }
    } finally {
      readers.delete(blocking)
      closing(blocking).disconnect()
    }
  }

  const publisher = makePublisher(
    registry,
    async (task, drafts, keepKeysSeconds) => {
      let ids: Array<string>
      try {
        const keepFor = Math.min(keepKeysSeconds ?? settings.idempotencySeconds, settings.idempotencySeconds)
        ids = await runAppend(redis, { ...settings, idempotencySeconds: keepFor }, task, drafts)
      } catch (error) {
        throw publishErrorOf(appendErrorOf(error, task))
      }
      await touchTaskIndex(redis, settings, task, drafts, ids).catch(() => undefined)
      return ids.map((id) => (id === "" ? null : id))
    },
    async () => {
      for (const reader of readers) closing(reader).disconnect()
      if (owned) await closing(redis).quit()
    },
    options
  )
  return {
    ...publisher,
    commands,
    commandStream: (task, commandOptions) => Stream.fromAsyncIterable(commands(task, commandOptions), unavailable)
  }
}

export interface HttpPublisherOptions extends PublisherOptions {
  /** The gateway's base URL, e.g. http://localhost:8080 */
  readonly url: string
  /** A JWT with `publish` scope, when the gateway requires auth. */
  readonly token?: string
}

/** Publish through a gateway's ingest route. */
export const httpPublisher = (options: HttpPublisherOptions): Publisher => {
  return makePublisher(
    registryOf(options),
    async (task, drafts) => {
      const body = drafts.map((draft) => ({
        type: draft.type,
        data: draft.data,
        ...(draft.time === undefined ? {} : { time: draft.time }),
        ...(draft.idempotencyKey === undefined ? {} : { idempotency_key: draft.idempotencyKey })
      }))
      const path = `/api/v1/agents/${encodeURIComponent(task.agentId)}/tasks/${encodeURIComponent(task.taskId)}/events`
      let response: Response
      try {
        response = await fetch(new URL(path, options.url), {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` })
          },
          body: JSON.stringify(body)
        })
      } catch (error) {
        throw new PublishError("unavailable", `gateway unreachable: ${(error as Error).message}`)
      }
      const reply = (await response.json().catch(() => ({}))) as { ids?: Array<string | null>; code?: string; message?: string; field?: string }
      if (response.status === 201 && reply.ids !== undefined) return reply.ids
      // 429 and 503 come with Retry-After: the SDK's retries try again, with the same keys.
      const code: PublishErrorCode = reply.code === "replication_timeout"
        ? "replication_timeout"
        : response.status >= 500 || response.status === 429
        ? "unavailable"
        : reply.code === "invalid_event" || reply.code === "task_ended" || reply.code === "task_agent_mismatch" ||
            reply.code === "payload_too_large"
        ? reply.code
        : "rejected"
      throw new PublishError(code, reply.message ?? `gateway answered ${response.status}`, reply.field)
    },
    async () => {},
    options
  )
}
