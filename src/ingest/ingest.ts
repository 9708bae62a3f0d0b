/**
 * What the bridge does with one message, whatever brought it: parse it,
 * append it, and count and log what became of it (SPEC §10.2b).
 */
import { Cause, Effect, Exit, FiberSet, Result } from "effect"
import { dataSize } from "../events/draft.ts"
import { Registry } from "../events/RegistryService.ts"
import { describeAppendError, EventLog } from "../log/EventLog.ts"
import { GatewayLog, type LogLine } from "../observability/log.ts"
import { GatewayMetrics, Metrics, type MetricsRecorder } from "../observability/metrics.ts"
import { decodeMessage } from "./message.ts"
import type { Published } from "./published.ts"

export type BridgeSource = "pubsub" | "stream"

/** What became of a message: stored (or already stored), refused for good, or not stored for now. */
export type Outcome =
  | { readonly _tag: "accepted" }
  | { readonly _tag: "rejected"; readonly reason: string }
  | { readonly _tag: "failed"; readonly reason: string }

export interface Ingest {
  /** Parse a message; when it is bad, its (recorded) outcome instead. */
  parse(source: BridgeSource, text: string, fallbackKey: () => string, where: Record<string, string>): Published | Outcome
  /** Refuse a message that cannot even be parsed, recording why. */
  reject(source: BridgeSource, reason: string, where: Record<string, string>): Outcome
  /** Append a parsed message and record the outcome. */
  append(source: BridgeSource, message: Published, where: Record<string, string>): Promise<Outcome>
}

const noteOn = (metrics: MetricsRecorder, logLine: LogLine) => (source: BridgeSource, outcome: Outcome, where: Record<string, string>): Outcome => {
  metrics.record(Metrics.ingestMessages, 1, { source, outcome: outcome._tag })
  if (outcome._tag !== "accepted") logLine("warn", `bridge message ${outcome._tag}`, { source, reason: outcome.reason, ...where })
  return outcome
}

/**
 * The bridge's ingest on the gateway's log and registry. Appends run as fibers
 * of a FiberSet in the caller's scope (the bridge's), so shutdown interrupts
 * one still waiting on the log.
 */
export const makeIngest = Effect.fnUntraced(function*(maxEventBytes: number) {
  const registry = yield* Registry
  const log = yield* EventLog
  const metrics = yield* GatewayMetrics
  const note = noteOn(metrics, yield* GatewayLog)
  const run = yield* FiberSet.makeRuntimePromise()
  const ingest: Ingest = {
    parse: (source, text, fallbackKey, where) => {
      const parsed = decodeMessage(registry, text, fallbackKey)
      if (Result.isFailure(parsed)) {
        return note(source, { _tag: "rejected", reason: `${parsed.failure.field}: ${parsed.failure.message}` }, where)
      }
      const size = dataSize(parsed.success.draft)
      if (size > maxEventBytes) return note(source, { _tag: "rejected", reason: `data is ${size} bytes; MAX_EVENT_BYTES is ${maxEventBytes}` }, where)
      return parsed.success
    },
    reject: (source, reason, where) => note(source, { _tag: "rejected", reason }, where),
    append: async (source, { draft, task }, where) => {
      const exit = await run(Effect.exit(log.append(task, [draft])))
      if (Exit.isSuccess(exit)) {
        metrics.record(Metrics.eventsAppended, 1)
        return note(source, { _tag: "accepted" }, { ...where, taskId: task.taskId })
      }
      const failure = exit.cause.reasons.find(Cause.isFailReason)?.error
      const taskWhere = { ...where, agentId: task.agentId, taskId: task.taskId }
      if (failure === undefined) return note(source, { _tag: "failed", reason: Cause.pretty(exit.cause) }, taskWhere)
      const { code, message } = describeAppendError(failure)
      // The log being away (or short of replicas) is worth a retry; anything else is the message's fault.
      const retry = code === "log_unavailable" || code === "replication_timeout"
      return note(source, { _tag: retry ? "failed" : "rejected", reason: message }, taskWhere)
    }
  }
  return ingest
})

export const isOutcome = (value: Published | Outcome): value is Outcome => "_tag" in value

