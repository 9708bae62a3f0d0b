/**
 * LLM calls in flight (SPEC §8.2), as pure rules shared by the memory log and
 * the pipeline; `src/log/append.lua` applies the same rules inside Redis.
 *
 * - `call_id` names a call; without it a chunk or a completion belongs to the
 *   task's most recent started call that has not completed, and a started
 *   call without one is named by its event's id.
 * - A call's chunks are kept (concatenated, with the last `chunk_index`) until
 *   its completion or the task's end; a chunk at or below the kept index is a
 *   repeat and is not kept again.
 * - Live chunks carry the `call_id` they were filed under; a completion
 *   without `content` is stored with the kept text as `content`.
 */
import { type EventId, LogEvent, parseEventId } from "./envelope.ts"
import { builtinRegistry, type EventType } from "./registry.ts"

export interface InflightCall {
  readonly callId: string
  /** Its WorkflowLLMCallStarted; undefined when chunks named a call that was never started. */
  readonly started: EventId | undefined
  readonly model: string | undefined
  /** Every chunk so far, concatenated. */
  readonly text: string
  /** The chunk_index of the last chunk in `text`; -1 before the first. */
  readonly index: number
}

export const CHUNK: EventType = "WorkflowLLMCallChunk"
export const CALL_STARTED: EventType = "WorkflowLLMCallStarted"
export const CALL_COMPLETED: EventType = "WorkflowLLMCallCompleted"

/** The one frame that stands for a call's chunks so far (SPEC §8.2); no id, like every chunk. */
export const compactedChunk = (task: { readonly agentId: string; readonly taskId: string }, call: InflightCall): LogEvent =>
  LogEvent.fromDraft(builtinRegistry, undefined, task, CHUNK, new Date().toISOString(), {
    call_id: call.callId,
    chunk: call.text,
    chunk_index: call.index,
    compacted: true,
    ...(call.model === undefined ? {} : { model: call.model })
  })

/** The call a chunk or completion names, when it names one. */
export const callIdOf = (data: Record<string, unknown>): string | undefined =>
  typeof data.call_id === "string" ? data.call_id : undefined

interface Call {
  started: EventId | undefined
  model: string | undefined
  text: string
  index: number
}

/** One task's calls in flight, for the memory log. */
export class InflightCalls {
  private readonly calls = new Map<string, Call>()
  /** Started calls not yet completed, in start order. */
  private readonly open: Array<string> = []
  /** When the kept chunks are dropped (INFLIGHT_TTL_S after the latest start). */
  expiresAt = Infinity

  constructor(private readonly ttlMs: number) {}

  /**
   * Apply one event about to be stored or published (its id, when stored) and
   * return its payload as it must go out: with `call_id` and, for a completion,
   * `content` filled in. Undefined: unchanged.
   */
  apply(type: string, id: string | undefined, data: Record<string, unknown>, now: number): Record<string, unknown> | undefined {
    if (now >= this.expiresAt) this.clear()
    if (type === CALL_STARTED) {
      const callId = callIdOf(data) ?? id!
      this.calls.set(callId, { started: parseEventId(id!), model: typeof data.model === "string" ? data.model : undefined, text: "", index: -1 })
      this.open.push(callId)
      this.expiresAt = now + this.ttlMs
      return undefined
    }
    if (type === CHUNK) {
      const callId = callIdOf(data) ?? this.open.at(-1)
      if (callId === undefined) return undefined
      let call = this.calls.get(callId)
      if (call === undefined) {
        call = { started: undefined, model: undefined, text: "", index: -1 }
        this.calls.set(callId, call)
        if (this.expiresAt === Infinity) this.expiresAt = now + this.ttlMs
      }
      const index = data.chunk_index as number
      if (index > call.index) {
        call.text += data.chunk as string
        call.index = index
      }
      call.model ??= typeof data.model === "string" ? data.model : undefined
      return callIdOf(data) === undefined ? { call_id: callId, ...data } : undefined
    }
    if (type === CALL_COMPLETED) {
      const callId = callIdOf(data) ?? this.open.at(-1)
      if (callId === undefined) return undefined
      const call = this.calls.get(callId)
      this.calls.delete(callId)
      const at = this.open.indexOf(callId)
      if (at >= 0) this.open.splice(at, 1)
      const filled = {
        ...(callIdOf(data) === undefined ? { call_id: callId } : {}),
        ...(data.content === undefined && call !== undefined && call.index >= 0 ? { content: call.text } : {})
      }
      return Object.keys(filled).length === 0 ? undefined : { ...filled, ...data }
    }
    return undefined
  }

  clear(): void {
    this.calls.clear()
    this.open.length = 0
    this.expiresAt = Infinity
  }

  get size(): number {
    return this.calls.size
  }

  snapshot(now: number): ReadonlyArray<InflightCall> {
    if (now >= this.expiresAt) this.clear()
    return [...this.calls].map(([callId, call]) => ({ callId, ...call }))
  }
}
