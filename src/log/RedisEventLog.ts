/**
 * The production log on Redis (SPEC §2, §5): a stream per task, appended with
 * the atomic append+notify script; one subscriber connection per gateway
 * instance, subscribed to a task's live channel while local clients follow it.
 * When the subscriber reconnects, every listener is told to catch up from the
 * log, so nothing published during the outage is lost.
 */
import { Effect, Layer, Result, Schedule, Stream } from "effect"
import { AppConfig } from "../config.ts"
import type { CommandDraft } from "../events/control.ts"
import type { EventDraft } from "../events/draft.ts"
import { type EventId, formatEventId, LogEvent, parseEventId } from "../events/envelope.ts"
import type { EventRegistry } from "../events/registry.ts"
import { Registry } from "../events/RegistryService.ts"
import { endStatusOf, type TaskStatus } from "../events/state.ts"
import { type AppendOutcome, type InflightCall, LogUnavailable, type TaskHead, type TaskRef } from "./EventLog.ts"
import { logServices } from "./LogServices.ts"
import { appendErrorOf, defineScripts, indexUpdate, publishRegistry, readHead, runAppend, TaskIndexUpdates } from "./appendScript.ts"
import { appendCommand, defineAppendCommand, RedisCommandReader } from "./controlStream.ts"
import { taskIndexKey, taskKeys, taskOfChannel, taskStatusKey } from "./keys.ts"
import { LiveChannels } from "./LiveChannels.ts"
import { parseLiveMessage } from "./liveMessage.ts"
import { makeLiveFeed } from "./RedisLiveFeed.ts"
import { blockingDuplicate, closeClient, closing, connectWithin, createClient, reportReachability, watchMinReplicas } from "./redisTarget.ts"
import { type RedisTarget } from "../redisUrl.ts"
import { GatewayLog, logEffect } from "../observability/log.ts"
import { GatewayMetrics, Metrics } from "../observability/metrics.ts"

type StreamEntry = [id: string, fields: Array<string>]

const entryToEvent = (registry: EventRegistry, taskId: string, [id, fields]: StreamEntry): LogEvent => {
  let type = ""
  let agentId = ""
  let time = ""
  let dataJson = "{}"
  for (let i = 0; i < fields.length; i += 2) {
    const value = fields[i + 1]
    switch (fields[i]) {
      case "type":
        type = value
        break
      case "agentId":
        agentId = value
        break
      case "time":
        time = value
        break
      case "data":
        dataJson = value
        break
    }
  }
  return new LogEvent({ id, type, agentId, taskId, time, dataJson }, registry)
}

const unavailable = (cause: unknown) =>
  new LogUnavailable({ message: `redis: ${cause instanceof Error ? cause.message : String(cause)}` })

/** The reply of XINFO STREAM as a map from field name to value. */
const infoFields = (reply: Array<unknown>): Map<string, unknown> => {
  const fields = new Map<string, unknown>()
  for (let i = 0; i < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1])
  return fields
}

/** EventLog, LiveFeed, TaskIndex and ControlQueue on one Redis (its command connection and subscriber). */
export const RedisLogLayer = Layer.effectContext(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const registry = yield* Registry
    const target: RedisTarget = config.redis ?? { kind: "standalone", url: "redis://127.0.0.1:6379" }
    const prefix = config.redisPrefix
    const appendSettings = { ...config, registry, prefix, waitReplicas: config.redisWaitReplicas, waitTimeoutMs: config.redisWaitTimeoutMs }

    const commands = yield* Effect.acquireRelease(
      // While Redis is away, fail at once (503) rather than queue or hang.
      Effect.sync(() => createClient(target, { failFast: true, lazyConnect: true, autoPipelining: true, commandTimeoutMs: config.redisCommandTimeoutMs })),
      (redis) => Effect.promise(() => closeClient(redis))
    )
    const logLine = yield* GatewayLog
    reportReachability(commands, "commands", logLine)
    watchMinReplicas(commands, config.redisWaitReplicas, logLine)
    defineScripts(commands)
    defineAppendCommand(commands)

    const metrics = yield* GatewayMetrics
    // A channel is a Redis subscription, started at once and dropped when its last listener leaves;
    // a failed subscription is retried by the feed on reconnect, which then reports a gap.
    const live: LiveChannels = yield* LiveChannels.make(metrics, {
      open: (taskId) => feed.subscribe(taskKeys(prefix, taskId).live),
      close: (taskId) => feed.unsubscribe(taskKeys(prefix, taskId).live)
    })

    yield* connectWithin(commands, config.redisCommandTimeoutMs)
    // The append script reads the registry from Redis for publishers in other languages (SPEC §10.2).
    yield* Effect.tryPromise(() => publishRegistry(commands, prefix, registry)).pipe(
      Effect.tapError(() => logEffect("warn", "could not write the event registry to redis; retrying")),
      Effect.retry(Schedule.spaced("5 seconds")),
      Effect.forkScoped
    )
    const feed = yield* makeLiveFeed(target, config.redisCommandTimeoutMs, metrics, {
      onMessage: (channel, message) => {
        const taskId = taskOfChannel(prefix, channel)
        if (taskId === undefined) return
        const parsed = parseLiveMessage(message, registry)
        if (parsed !== undefined) return live.dispatch(taskId, parsed.event, parsed.prev)
        // Not the append script's format (a hand-written PUBLISH?): drop it, and let the
        // task's listeners read the log in case it stood for a real event.
        logLine("warn", "dropped a malformed live message", { channel, length: message.length })
        metrics.record(Metrics.eventsDropped, 1, { reason: "malformed" })
        live.gap(taskId)
      },
      wanted: () => [...live.tasks()].map((taskId) => taskKeys(prefix, taskId).live),
      wants: (channel) => {
        const taskId = taskOfChannel(prefix, channel)
        return taskId !== undefined && live.has(taskId)
      },
      onResubscribed: () => {
        metrics.record(Metrics.redisReconnects, 1)
        logLine("warn", "redis subscriber reconnected; open streams catch up from the log")
        live.gapAll()
      },
      onRestored: (channel) => {
        const taskId = taskOfChannel(prefix, channel)
        if (taskId !== undefined) live.gap(taskId)
      }
    })

    const run = <A>(command: () => Promise<A>) => Effect.tryPromise({ try: command, catch: unavailable })

    // The index update is sent, not awaited, with those of the next INDEX_FLUSH_MS: an append costs one round trip.
    // Released before the command connection (acquired after it): what is pending goes out before QUIT.
    const indexUpdates = yield* Effect.acquireRelease(
      Effect.sync(() => new TaskIndexUpdates(commands, appendSettings)),
      (updates) => Effect.sync(() => updates.close())
    )
    const appendNow = (task: TaskRef, drafts: ReadonlyArray<EventDraft>): Promise<AppendOutcome> =>
      runAppend(commands, appendSettings, task, drafts).then(
        (ids) => {
          indexUpdates.add(indexUpdate(appendSettings.registry, task, drafts, ids))
          return Result.succeed(ids.map((id) => (id === "" ? null : id)))
        },
        (cause) => Result.fail(appendErrorOf(cause, task))
      )

    const read = (taskId: string, after: EventId, limit: number) =>
      run(() =>
        commands.xrange(taskKeys(prefix, taskId).log, `(${formatEventId(after)}`, "+", "COUNT", limit) as Promise<
          Array<StreamEntry>
        >
      ).pipe(Effect.map((entries) => entries.map((entry) => entryToEvent(registry, taskId, entry))))

    const head = (taskId: string) =>
      run(() => readHead(commands, taskKeys(prefix, taskId))).pipe(
        Effect.map(({ info: reply, calls }): TaskHead => {
          if (reply === null) return { agentId: undefined, last: undefined, first: undefined, trimmed: false, calls }
          const info = infoFields(reply)
          const lastEntry = info.get("last-entry") as StreamEntry | null
          const firstEntry = info.get("first-entry") as StreamEntry | null
          const last = lastEntry ? entryToEvent(registry, taskId, lastEntry) : undefined
          return {
            agentId: last?.agentId,
            last,
            first: firstEntry ? parseEventId(firstEntry[0]) : undefined,
            // MAXLEN trimming records no deleted id; fewer entries than were ever added means some were trimmed.
            trimmed: Number(info.get("entries-added") ?? 0) > Number(info.get("length") ?? 0),
            calls
          }
        })
      )

    /** The calls in flight, from the hash append.lua keeps (fields described in its header). */
    const inflight = (taskId: string) =>
      run(() => commands.hgetall(taskKeys(prefix, taskId).inflight)).pipe(
        Effect.map((fields): ReadonlyArray<InflightCall> => {
          const open: Array<string> = fields.open === undefined ? [] : JSON.parse(fields.open)
          const named = Object.keys(fields).filter((field) => field.startsWith("i:")).map((field) => field.slice(2))
          // Started calls in start order, then any named only by chunks.
          const callIds = [...open, ...named.filter((callId) => !open.includes(callId))]
          return callIds.filter((callId) => fields[`i:${callId}`] !== undefined).map((callId) => {
            const parts: Array<string> = []
            for (let n = 1, count = Number(fields[`n:${callId}`] ?? 0); n <= count; n++) parts.push(fields[`c:${callId}:${n}`] ?? "")
            return {
              callId,
              started: parseEventId(fields[`s:${callId}`] ?? ""),
              model: fields[`m:${callId}`] || undefined,
              text: parts.join(""),
              index: Number(fields[`i:${callId}`])
            }
          })
        })
      )

    const tasks = (agentId: string | undefined, limit: number) =>
      Effect.gen(function*() {
        // The index is small (TASK_INDEX_MAX); an agent filter scans a bounded window.
        const window = agentId === undefined ? limit : Math.min(config.taskIndexMax, limit * 50)
        // The updates still pending go first on this connection: the read sees every append answered before it.
        indexUpdates.flush()
        const members = yield* run(() =>
          commands.zrevrange(taskIndexKey(prefix), 0, window - 1, "WITHSCORES")
        )
        const found: Array<{ agentId: string; taskId: string; at: number }> = []
        for (let i = 0; i < members.length && found.length < limit; i += 2) {
          const slash = members[i].indexOf("/")
          const summary = { agentId: members[i].slice(0, slash), taskId: members[i].slice(slash + 1), at: Number(members[i + 1]) }
          if (agentId === undefined || summary.agentId === agentId) found.push(summary)
        }
        // The status hash sits in the index's slot: one more command for the whole page.
        const recorded = found.length === 0
          ? []
          : yield* run(() => commands.hmget(taskStatusKey(prefix), ...found.map((task) => `${task.agentId}/${task.taskId}`)))
        const statuses = recorded.map((value) => (value === null ? undefined : (value.slice(value.indexOf(" ") + 1) as TaskStatus)))
        // Tasks indexed by a publisher that predates the status hash: their newest event tells whether they ended.
        const unknown = found.flatMap((_, i) => (statuses[i] === undefined ? [i] : []))
        const newest = yield* run(() =>
          Promise.all(
            unknown.map((i) =>
              commands.xrevrange(taskKeys(prefix, found[i].taskId).log, "+", "-", "COUNT", 1) as Promise<Array<StreamEntry>>
            )
          )
        )
        unknown.forEach((i, n) => {
          const last = newest[n][0] === undefined ? undefined : entryToEvent(registry, found[i].taskId, newest[n][0])
          statuses[i] = last?.terminal ? endStatusOf(last) : "running"
        })
        return found.map((task, i) => ({
          agentId: task.agentId,
          taskId: task.taskId,
          lastEventAt: new Date(task.at).toISOString(),
          status: statuses[i] ?? "running"
        }))
      })

    const controlCommands = (task: TaskRef, reader: string) =>
      Stream.unwrap(
        Effect.gen(function*() {
          // A blocking read holds its connection: each reader gets its own, which waits out outages.
          const blocking = yield* Effect.acquireRelease(
            Effect.sync(() => blockingDuplicate(commands)),
            (redis) => Effect.sync(() => closing(redis).disconnect())
          )
          blocking.on("error", () => {})
          const commandReader = new RedisCommandReader(blocking, commands, prefix, task, reader)
          return Stream.fromEffectRepeat(run(() => commandReader.next()))
        })
      )

    return logServices({
      log: { appendNow, read, head, inflight, ping: run(() => commands.ping()).pipe(Effect.asVoid) },
      feed: {
        ...live.feed,
        // Ready means Redis takes every live subscription this instance needs.
        ready: Effect.suspend(() => {
          const failing = feed.failing()
          if (failing.size === 0) return Effect.void
          const [[channel, error]] = failing
          return Effect.fail(new LogUnavailable({ message: `redis refuses ${failing.size} live subscription(s), e.g. ${channel}: ${error}` }))
        }),
        liveTaskCount: () => live.size
      },
      index: { tasks },
      control: {
        append: (task: TaskRef, draft: CommandDraft) => run(() => appendCommand(commands, appendSettings, task, draft)),
        commands: controlCommands,
        ack: (taskId: string, reader: string, id: string) =>
          run(() => commands.xack(taskKeys(prefix, taskId).control, reader, id)).pipe(Effect.asVoid)
      }
    })
  })
)
