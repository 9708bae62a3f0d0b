/**
 * How to call the append+notify script (`append.lua`, SPEC §5) and the task
 * index script (`task_index.lua`, SPEC §9.1): one place that builds their KEYS
 * and ARGV and reads their errors, shared by the Redis log layer and the
 * publisher SDK.
 */
import { readFileSync } from "node:fs"
import { type EventDraft, InvalidEvent } from "../events/draft.ts"
import { AgentMismatch, type AppendError, LogUnavailable, ReplicationTimeout, TaskEnded, type TaskRef } from "./EventLog.ts"
import { indexUpdateOf } from "../events/state.ts"
import { type EventRegistry, storageKindOf } from "../events/registry.ts"
import { registryKey, taskIndexKey, taskKeys, taskStatusKey } from "./keys.ts"
import { isCluster, type RedisClient } from "./redisTarget.ts"

export const APPEND_SCRIPT_PATH = new URL("./append.lua", import.meta.url)
export const APPEND_SCRIPT = readFileSync(APPEND_SCRIPT_PATH, "utf8")
export const TASK_INDEX_SCRIPT_PATH = new URL("./task_index.lua", import.meta.url)
const TASK_INDEX_SCRIPT = readFileSync(TASK_INDEX_SCRIPT_PATH, "utf8")

export interface AppendSettings {
  /** The registry of whoever appends (a gateway's, a publisher's): its custom types are declared to the script. */
  readonly registry: EventRegistry
  readonly prefix: string
  readonly historyMax: number
  readonly retentionSeconds: number
  readonly idempotencySeconds: number
  /** INFLIGHT_TTL_S: how long the chunks of an LLM call in flight are kept at most. */
  readonly inflightSeconds: number
  readonly taskIndexMax: number
  /** TASK_IDLE_TTL_S: a running task's log expires this long after its last append (0 = never). */
  readonly taskIdleSeconds: number
  /** REDIS_WAIT_REPLICAS: replicas that must acknowledge an append before it counts (0 = none; not on a Cluster). */
  readonly waitReplicas?: number
  /** REDIS_WAIT_TIMEOUT_MS: how long to wait for them. */
  readonly waitTimeoutMs?: number
}

type ScriptCommand<A> = (...args: Array<string | number>) => Promise<A>
/** Fewer replicas than asked acknowledged an append in time: it is stored on the master but may not survive its loss. */
export class ReplicationTimeoutError extends Error {
  override readonly name = "ReplicationTimeoutError"
  constructor(readonly wanted: number, readonly acknowledged: number) {
    super(`TS_REPLICATION_TIMEOUT ${acknowledged} of ${wanted} replicas acknowledged the append in time; retry with the same idempotency key`)
  }
}

/** Register the scripts on a connection (ioredis runs them by EVALSHA, loading them when missing). */
export const defineScripts = (redis: RedisClient): void => {
  redis.defineCommand("taskstreamAppend", { lua: APPEND_SCRIPT })
  redis.defineCommand("taskstreamIndex", { lua: TASK_INDEX_SCRIPT })
}

/**
 * Run the script: the ids it assigned, '' for ephemeral events. Rejects with the script's `TS_…` error.
 * With `waitReplicas`, a WAIT follows in the same pipeline — so on the same connection, right after
 * the write — and too few acknowledgements reject with ReplicationTimeoutError.
 */
export const runAppend = async (
  redis: RedisClient,
  settings: AppendSettings,
  task: { readonly agentId: string; readonly taskId: string },
  drafts: ReadonlyArray<EventDraft>
): Promise<Array<string>> => {
  const keys = taskKeys(settings.prefix, task.taskId)
  const idempotencyKeys: Array<string> = []
  const eventArgs: Array<string | number> = []
  for (const draft of drafts) {
    let keyIndex = 0
    if (draft.idempotencyKey !== undefined) {
      idempotencyKeys.push(keys.idempotency(draft.idempotencyKey))
      keyIndex = idempotencyKeys.length
    }
    eventArgs.push(draft.type, draft.dataJson, draft.time ?? "", keyIndex)
  }
  const allKeys = [keys.log, keys.live, keys.inflight, ...idempotencyKeys]
  const args = [
    allKeys.length,
    ...allKeys,
    task.agentId,
    settings.historyMax,
    settings.retentionSeconds,
    settings.idempotencySeconds,
    // Sharded pub/sub on a Cluster: the message stays in the task's shard.
    isCluster(redis) ? "SPUBLISH" : "PUBLISH",
    settings.inflightSeconds,
    settings.taskIdleSeconds,
    drafts.length,
    ...eventArgs,
    // The script knows the built-in types; this process's custom ones are declared after the events
    // (all of them: the task's newest stored event may be of any, and may have ended it).
    ...settings.registry.customKinds
  ]
  const wanted = settings.waitReplicas ?? 0
  if (wanted === 0) return (redis as unknown as { taskstreamAppend: ScriptCommand<Array<string>> }).taskstreamAppend(...args)
  const pipeline = redis.pipeline() as unknown as { taskstreamAppend: (...args: Array<string | number>) => unknown } & ReturnType<RedisClient["pipeline"]>
  pipeline.taskstreamAppend(...args)
  pipeline.wait(wanted, settings.waitTimeoutMs ?? 1000)
  const [[appendError, ids], [waitError, acknowledged]] = (await pipeline.exec()) as [[Error | null, Array<string>], [Error | null, number]]
  if (appendError !== null) throw appendError
  if (waitError !== null) throw waitError
  if (acknowledged < wanted) throw new ReplicationTimeoutError(wanted, acknowledged)
  return ids
}

/**
 * Write a gateway's registry (type → kind) to `<prefix>:registry`, where
 * the append script looks up the custom types other publishers send.
 * Additive: a type stays known until the key is deleted.
 */
export const publishRegistry = (redis: RedisClient, prefix: string, registry: EventRegistry): Promise<unknown> =>
  redis.hset(registryKey(prefix), Object.fromEntries(registry.types.map((type) => [type, storageKindOf(registry.kindOf(type)!)])))

/**
 * Record an append in the recent-tasks index and its status hash
 * (`task_index.lua`): a separate call, as the index lives in another cluster
 * slot than the task.
 */
export const touchTaskIndex = (
  redis: RedisClient,
  settings: AppendSettings,
  task: { readonly agentId: string; readonly taskId: string },
  drafts: ReadonlyArray<EventDraft>,
  ids: ReadonlyArray<string | null>
): Promise<unknown> => {
  const { lastId, status } = indexUpdateOf(settings.registry, drafts, ids)
  const index = (redis as unknown as { taskstreamIndex: ScriptCommand<number> }).taskstreamIndex
  return index.call(
    redis,
    2,
    taskIndexKey(settings.prefix),
    taskStatusKey(settings.prefix),
    `${task.agentId}/${task.taskId}`,
    Date.now(),
    settings.taskIndexMax,
    lastId ?? "",
    status ?? ""
  )
}

/** The script refused an event's content (its JSON decoder is stricter than JSON.parse): the client's fault. */
const INVALID_FIELDS = { TS_UNKNOWN_TYPE: "type", TS_BAD_DATA: "data", TS_BAD_TIME: "time" } as const

/** A failed append of `task` (a script error, a connection error) as the log's typed error. */
export const appendErrorOf = (error: unknown, task: TaskRef): AppendError => {
  const message = error instanceof Error ? error.message : String(error)
  if (message.startsWith("TS_AGENT_MISMATCH ")) return new AgentMismatch({ taskId: task.taskId })
  if (message.startsWith("TS_TASK_ENDED ")) return new TaskEnded({ taskId: task.taskId, message: message.slice(14) })
  if (error instanceof ReplicationTimeoutError) return new ReplicationTimeout({ message: message.slice(23) })
  const code = message.split(" ", 1)[0]
  if (Object.hasOwn(INVALID_FIELDS, code)) {
    return new InvalidEvent({ field: INVALID_FIELDS[code as keyof typeof INVALID_FIELDS], message: message.slice(code.length + 1) })
  }
  return new LogUnavailable({ message: `redis: ${message}` })
}
