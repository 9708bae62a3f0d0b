/**
 * How to call the append+notify script (`append.lua`, SPEC §5) and the task
 * index script (`task_index.lua`, SPEC §9.1): one place that builds their KEYS
 * and ARGV and reads their errors, shared by the Redis log layer and the
 * publisher SDK.
 */
import { readFileSync } from "node:fs"
import { type EventDraft, InvalidEvent } from "../events/draft.ts"
import { compareIds, parseEventId } from "../events/envelope.ts"
import { AgentMismatch, type AppendError, LogUnavailable, ReplicationTimeout, TaskEnded, type TaskRef } from "./EventLog.ts"
import { indexUpdateOf } from "../events/state.ts"
import { type EventRegistry, storageKindOf } from "../events/registry.ts"
import { registryKey, taskIndexKey, taskKeys, taskStatusKey } from "./keys.ts"
import { isCluster, type RedisClient } from "./redisTarget.ts"

export const APPEND_SCRIPT_PATH = new URL("./append.lua", import.meta.url)
export const APPEND_SCRIPT = readFileSync(APPEND_SCRIPT_PATH, "utf8")
export const TASK_INDEX_SCRIPT_PATH = new URL("./task_index.lua", import.meta.url)
const TASK_INDEX_SCRIPT = readFileSync(TASK_INDEX_SCRIPT_PATH, "utf8")
/** How many index updates one call of the batch script applies at most. */
export const INDEX_BATCH_MAX = 100
/**
 * task_index.lua applied to several updates in one call, in order: its text unchanged as the body
 * of a function whose KEYS and ARGV shadow the call's (its `return`s end one update), then a loop
 * over ARGV in groups of five (member, now, max, last id, status). Same keys, same slot.
 */
const TASK_INDEX_BATCH_SCRIPT = `local function index_one(KEYS, ARGV)
${TASK_INDEX_SCRIPT}
end
local changed = 0
for i = 1, #ARGV, 5 do
  changed = changed + index_one(KEYS, { ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4] })
end
return changed
`

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

/**
 * The head of a task's log — XINFO STREAM, or nil when the task has no log —
 * and whether its hash of calls in flight exists, in one round trip. A script
 * so that a task nobody has written to yet (a client that connects before its
 * workflow starts) is an answer, not an error reply that the client library
 * turns into an exception with a stack trace, once per connection.
 */
const HEAD_SCRIPT = `local calls = redis.call('EXISTS', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return {false, calls} end
return {redis.call('XINFO', 'STREAM', KEYS[1]), calls}`

/** XINFO STREAM's reply for the task's log (null when it has none), and whether calls are in flight. */
export const readHead = async (redis: RedisClient, keys: { readonly log: string; readonly inflight: string }) => {
  const [info, calls] = await (redis as unknown as { taskstreamHead: ScriptCommand<[Array<unknown> | null, number]> })
    .taskstreamHead(2, keys.log, keys.inflight)
  return { info, calls: calls === 1 }
}

/** Register the scripts on a connection (ioredis runs them by EVALSHA, loading them when missing). */
export const defineScripts = (redis: RedisClient): void => {
  redis.defineCommand("taskstreamHead", { lua: HEAD_SCRIPT })
  redis.defineCommand("taskstreamAppend", { lua: APPEND_SCRIPT })
  redis.defineCommand("taskstreamIndex", { lua: TASK_INDEX_SCRIPT })
  redis.defineCommand("taskstreamIndexBatch", { lua: TASK_INDEX_BATCH_SCRIPT })
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

/** What one append tells the task index: when, its last stored id ('' if none), the status it set ('' if none). */
export interface IndexUpdate {
  readonly member: string
  readonly at: number
  readonly lastId: string
  readonly status: string
}

export const indexUpdate = (
  registry: EventRegistry,
  task: { readonly agentId: string; readonly taskId: string },
  drafts: ReadonlyArray<EventDraft>,
  ids: ReadonlyArray<string | null>,
  at = Date.now()
): IndexUpdate => {
  const { lastId, status } = indexUpdateOf(registry, drafts, ids)
  return { member: `${task.agentId}/${task.taskId}`, at, lastId: lastId ?? "", status: status ?? "" }
}

/** The order of two stored ids (as the script returned them). */
const idOrder = (a: string, b: string): number => compareIds(parseEventId(a)!, parseEventId(b)!)

/**
 * One update of a task that leaves the index exactly as `earlier` then `later` would
 * (task_index.lua applied in that order), or undefined when both must run. An update older
 * than the one before it is refused by the script after it; one that sets no status folds the
 * recorded status the same way whether or not an earlier status-less update ran first. Only a
 * status-less update after one that set a status needs both (the script reads the recorded status).
 */
export const coalesceIndexUpdates = (earlier: IndexUpdate, later: IndexUpdate): IndexUpdate | undefined => {
  const at = Math.max(earlier.at, later.at)
  if (later.lastId === "") return { ...earlier, at }
  if (earlier.lastId === "" || (idOrder(later.lastId, earlier.lastId) > 0 && (later.status !== "" || earlier.status === ""))) {
    return { ...later, at }
  }
  return idOrder(later.lastId, earlier.lastId) > 0 ? undefined : { ...earlier, at }
}

const runIndexScript = (
  target: { taskstreamIndex: (...args: Array<string | number>) => unknown },
  settings: AppendSettings,
  update: IndexUpdate
) =>
  target.taskstreamIndex(
    2,
    taskIndexKey(settings.prefix),
    taskStatusKey(settings.prefix),
    update.member,
    update.at,
    settings.taskIndexMax,
    update.lastId,
    update.status
  )

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
): Promise<unknown> =>
  runIndexScript(redis as unknown as { taskstreamIndex: ScriptCommand<number> }, settings, indexUpdate(settings.registry, task, drafts, ids)) as Promise<unknown>

/** How long index updates wait to be sent together (and coalesced per task). */
export const INDEX_FLUSH_MS = 25
/** How long after its append a failed index update is sent again, with the next ones. */
export const INDEX_RETRY_MS = 10_000

/**
 * The index updates of the appends of the last INDEX_FLUSH_MS, sent together
 * (one call of the batch script per INDEX_BATCH_MAX) without waiting for Redis: an append is answered after one
 * round trip, not two, and costs no index write of its own. Consecutive updates
 * of one task are coalesced (`coalesceIndexUpdates`). A read of the index on
 * this gateway calls `flush()` first, so it sees every append answered before
 * it (Redis runs one connection's commands in order); another gateway sees them
 * at most INDEX_FLUSH_MS later. Closing the log flushes too. The index is best
 * effort: a failed call's updates are sent again with the next ones, before
 * what came since for the same task, until INDEX_RETRY_MS after their append
 * (a Redis Cluster's first commands, a failover); then they are dropped.
 */
export class TaskIndexUpdates {
  private pending = new Map<string, Array<IndexUpdate>>()
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private closed = false

  constructor(
    private readonly redis: RedisClient,
    private readonly settings: AppendSettings,
    private readonly delayMs = INDEX_FLUSH_MS
  ) {}

  add(update: IndexUpdate): void {
    this.queue(update)
    this.timer ??= setTimeout(this.flush, this.delayMs)
  }

  /** Send what is pending, and nothing after (the log is closing). */
  close(): void {
    this.flush()
    this.closed = true
  }

  /** Send the pending updates now: before a read of the index, on close, and when the timer fires. */
  readonly flush = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const pending = this.pending
    this.pending = new Map()
    const updates = [...pending.values()].flat()
    if (updates.length === 1) {
      void (runIndexScript(this.redis as unknown as { taskstreamIndex: ScriptCommand<number> }, this.settings, updates[0]) as Promise<unknown>)
        .catch(() => this.retry(updates))
      return
    }
    // Several: one call of the batch script per INDEX_BATCH_MAX, each the script's updates in order.
    const redis = this.redis as unknown as { taskstreamIndexBatch: ScriptCommand<number> }
    for (let start = 0; start < updates.length; start += INDEX_BATCH_MAX) {
      const batch = updates.slice(start, start + INDEX_BATCH_MAX)
      const args: Array<string | number> = [2, taskIndexKey(this.settings.prefix), taskStatusKey(this.settings.prefix)]
      for (const update of batch) args.push(update.member, update.at, this.settings.taskIndexMax, update.lastId, update.status)
      redis.taskstreamIndexBatch(...args).catch(() => this.retry(batch))
    }
  }

  /** The last of a task's pending updates and `update`, coalesced where one call would do. */
  private queue(update: IndexUpdate): void {
    const updates = this.pending.get(update.member)
    if (updates === undefined) this.pending.set(update.member, [update])
    else {
      const merged = coalesceIndexUpdates(updates[updates.length - 1], update)
      if (merged === undefined) updates.push(update)
      else updates[updates.length - 1] = merged
    }
  }

  /** A failed call's updates go again with the next ones, before those that came since (the script's order). */
  private retry(failed: ReadonlyArray<IndexUpdate>): void {
    if (this.closed) return
    const since = this.pending
    this.pending = new Map()
    const now = Date.now()
    for (const update of failed) if (now - update.at < INDEX_RETRY_MS) this.queue(update)
    for (const updates of since.values()) for (const update of updates) this.queue(update)
    if (this.pending.size === 0 || this.timer !== undefined) return
    this.timer = setTimeout(this.flush, this.delayMs)
    // Best effort: a retry never keeps the process alive.
    ;(this.timer as { unref?: () => void }).unref?.()
  }
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
