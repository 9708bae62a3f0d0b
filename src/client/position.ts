/**
 * Where one subscription stands in its task's log, and the filter that keeps
 * every event exactly once across reconnects, transport switches and leader
 * tabs changing: durable events by id (`<ms>-<seq>`, increasing), LLM token
 * chunks (no id) by their call and `chunk_index` (SPEC §8.2). A `compacted`
 * chunk carries the call's whole text so far: it always passes (the consumer
 * replaces the call's text with it) and live chunks continue after its index.
 */
import { isAfter, type TaskEvent } from "./events.ts"

/** The fields of an LLM chunk that identify it (`call_id` and `compacted` come with in-flight resume). */
export interface ChunkFields {
  readonly call_id?: string
  readonly chunk?: string
  readonly chunk_index?: number
  readonly compacted?: boolean
}

/** A chunk's call: its `call_id`, or the task's open call when the publisher gave none. */
export const callOf = (data: ChunkFields): string => data.call_id ?? ""

export class Position {
  private readonly chunks = new Map<string, number>()

  constructor(public lastEventId: string | undefined) {}

  /** Whether `event` is new here; when it is, the position moves past it. */
  accept(event: TaskEvent): boolean {
    if (event.type === "WorkflowLLMCallChunk") {
      const data = event.data as ChunkFields
      const call = callOf(data)
      const index = data.chunk_index ?? 0
      const last = this.chunks.get(call)
      if (!data.compacted && last !== undefined && index <= last) return false
      this.chunks.set(call, index)
      return true
    }
    if (event.id === undefined) return true
    if (!isAfter(event.id, this.lastEventId)) return false
    this.lastEventId = event.id
    // A new call starts its chunk count again (the open call, when the publisher gives no call_id).
    if (event.type === "WorkflowLLMCallStarted") {
      this.chunks.delete(callOf(event.data as ChunkFields))
    }
    return true
  }
}
