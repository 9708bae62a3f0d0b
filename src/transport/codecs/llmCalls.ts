/**
 * The LLM calls a stream has open, for the encodings that turn calls into
 * text messages (AG-UI, the UI message stream). Attribution follows SPEC §8.2:
 * a chunk or completion without `call_id` belongs to the most recent started
 * call not yet completed. A compacted chunk (the call's whole text so far)
 * adds only what this stream has not sent yet: these protocols cannot retract
 * text.
 */
import type { LogEvent } from "../../events/envelope.ts"

export interface OpenCall {
  /** `call_id`, else the id of the call's `WorkflowLLMCallStarted`. */
  readonly key: string
  /** Characters of text this stream has sent for the call. */
  sent: number
  /** The highest `chunk_index` a compacted chunk covered; live chunks at or below it are already in. */
  compactedThrough: number
}

const callIdOf = (event: LogEvent): string | undefined => {
  const callId = event.data.call_id
  return typeof callId === "string" && callId !== "" ? callId : undefined
}

export class LlmCalls {
  /** Open calls, oldest first. */
  private readonly open = new Map<string, OpenCall>()

  /** The key of the call a `WorkflowLLMCallStarted` opens. */
  keyOfStart(event: LogEvent): string {
    return callIdOf(event) ?? event.id ?? `call-${event.time}`
  }

  /** The key of the call a chunk or completion belongs to; undefined when no call is open and it names none. */
  keyOf(event: LogEvent): string | undefined {
    return callIdOf(event) ?? [...this.open.keys()].at(-1)
  }

  get(key: string): OpenCall | undefined {
    return this.open.get(key)
  }

  start(key: string): OpenCall {
    const call: OpenCall = { key, sent: 0, compactedThrough: -1 }
    this.open.set(key, call)
    return call
  }

  /** The text a chunk adds to `call` on this stream ('' for none); counts it as sent. */
  textOf(call: OpenCall, chunk: LogEvent): string {
    const { chunk: text, chunk_index: index, compacted } = chunk.data as { chunk?: unknown; chunk_index?: unknown; compacted?: unknown }
    if (typeof text !== "string") return ""
    if (compacted === true) {
      if (typeof index === "number") call.compactedThrough = Math.max(call.compactedThrough, index)
      const added = text.slice(call.sent)
      call.sent = Math.max(call.sent, text.length)
      return added
    }
    if (typeof index === "number" && index <= call.compactedThrough) return ""
    call.sent += text.length
    return text
  }

  complete(key: string): void {
    this.open.delete(key)
  }

  /** Every open call, oldest first; the stream closes them all at its end. */
  drain(): Array<OpenCall> {
    const calls = [...this.open.values()]
    this.open.clear()
    return calls
  }
}
