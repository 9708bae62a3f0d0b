/**
 * The AI SDK's UI message stream over SSE (SPEC §9.3), for `useChat({resume:
 * true})` (`DefaultChatTransport.reconnectToStream`): the whole task as one
 * assistant message. Pure: (event, this stream's state) → `data: <chunk JSON>`
 * frames, ending `data: [DONE]`.
 *
 * The SDK's reader drops every open text part at `finish-step` and refuses a
 * delta for a part it does not know: a call still writing when its step ends
 * continues in a new text part (`<call>~2`, …).
 */
import type { LogEvent } from "../../events/envelope.ts"
import { type CloseReason, cutShort } from "../connections.ts"
import type { SseCodec } from "../sse.ts"
import { LlmCalls } from "./llmCalls.ts"

type UiChunk = { readonly type: string } & Record<string, unknown>

const dataFrame = (chunk: UiChunk): string => `data: ${JSON.stringify(chunk)}\n\n`
const DONE = "data: [DONE]\n\n"

export const UI_MESSAGE_STREAM_HEADERS = { "x-vercel-ai-ui-message-stream": "v1" } as const

const errorText = (value: unknown, fallback: string): string =>
  typeof value === "string" ? value : value === undefined || value === null ? fallback : JSON.stringify(value)

export class UiMessageStreamCodec implements SseCodec {
  private readonly calls = new LlmCalls()
  /** Each open call's text part: its id, or undefined once a `finish-step` closed it. */
  private readonly parts = new Map<string, { id: string | undefined; count: number }>()
  /** Tool calls whose input part exists, so an output always has one to land on. */
  private readonly tools = new Set<string>()
  private finished = false

  constructor(private readonly messageId: string) {}

  open(): string {
    return dataFrame({ type: "start", messageId: this.messageId })
  }

  event(event: LogEvent): string {
    if (this.finished) return ""
    const out: Array<UiChunk> = []
    const data = event.data
    switch (event.type) {
      case "WorkflowStepStarted":
        out.push({ type: "start-step" })
        break
      case "WorkflowStepCompleted":
        this.closeParts(out)
        out.push({ type: "finish-step" })
        break
      case "WorkflowLLMCallStarted": {
        const key = this.calls.keyOfStart(event)
        if (this.calls.get(key) === undefined) {
          this.calls.start(key)
          this.parts.set(key, { id: undefined, count: 0 })
          this.partOf(key, out)
        }
        break
      }
      case "WorkflowLLMCallChunk": {
        const key = this.calls.keyOf(event)
        if (key === undefined) break
        const call = this.calls.get(key) ?? this.startLate(key)
        const delta = this.calls.textOf(call, event)
        if (delta !== "") out.push({ type: "text-delta", id: this.partOf(key, out), delta })
        break
      }
      case "WorkflowLLMCallCompleted": {
        const key = this.calls.keyOf(event) ?? this.calls.keyOfStart(event)
        const call = this.calls.get(key) ?? this.startLate(key)
        const id = this.partOf(key, out)
        if (call.sent === 0 && typeof data.content === "string" && data.content !== "") {
          out.push({ type: "text-delta", id, delta: data.content })
        }
        out.push({ type: "text-end", id })
        this.calls.complete(key)
        this.parts.delete(key)
        break
      }
      case "WorkflowToolCallStarted": {
        const toolCallId = String(data.tool_call_id)
        this.tools.add(toolCallId)
        // Executed by the workflow, not by the browser: useChat must not run it itself.
        out.push({ type: "tool-input-available", toolCallId, toolName: String(data.tool_name), input: data.arguments ?? {}, providerExecuted: true })
        break
      }
      case "WorkflowToolCallCompleted": {
        const toolCallId = String(data.tool_call_id)
        if (!this.tools.has(toolCallId)) {
          // Started before the retained history: give its output a part to land on.
          this.tools.add(toolCallId)
          out.push({ type: "tool-input-available", toolCallId, toolName: String(data.tool_name), input: {}, providerExecuted: true })
        }
        out.push(
          data.success === false
            ? { type: "tool-output-error", toolCallId, errorText: errorText(data.result, "tool call failed"), providerExecuted: true }
            : { type: "tool-output-available", toolCallId, output: data.result ?? null, providerExecuted: true }
        )
        break
      }
      case "WorkflowCompleted":
        this.closeParts(out)
        out.push({ type: "finish" })
        break
      case "WorkflowFailed":
        this.closeParts(out)
        out.push({ type: "error", errorText: errorText(data.error, "failed") }, { type: "finish" })
        break
      case "WorkflowCancelled":
        this.closeParts(out)
        out.push({ type: "abort", ...(typeof data.reason === "string" ? { reason: data.reason } : {}) })
        break
      default:
        out.push({ type: "data-taskstream", id: event.id, data: event.envelope })
    }
    let frames = ""
    for (const chunk of out) frames += dataFrame(chunk)
    if (event.terminal) {
      this.finished = true
      frames += DONE
    }
    return frames
  }

  resync(oldest: string): string {
    return dataFrame({ type: "data-taskstream", transient: true, data: { type: "resync", reason: "history_trimmed", oldest } })
  }

  heartbeat(): string {
    return ": heartbeat\n\n"
  }

  /**
   * After a terminal event the stream is complete; any other end reports an
   * error first — but a shutdown ends without one: `useChat` resumes on its
   * next mount, on another instance.
   */
  end(reason: CloseReason): string {
    if (this.finished || reason === "shutdown") return ""
    this.finished = true
    const out: Array<UiChunk> = []
    this.closeParts(out)
    out.push({ type: "error", errorText: cutShort(reason) })
    return out.map(dataFrame).join("") + DONE
  }

  /** A call started before the retained history. */
  private startLate(key: string) {
    this.parts.set(key, { id: undefined, count: 0 })
    return this.calls.start(key)
  }

  /** The id of the call's open text part, opening one (after a `finish-step` closed the last) when needed. */
  private partOf(key: string, out: Array<UiChunk>): string {
    const part = this.parts.get(key) ?? { id: undefined, count: 0 }
    this.parts.set(key, part)
    if (part.id === undefined) {
      part.count++
      part.id = part.count === 1 ? key : `${key}~${part.count}`
      out.push({ type: "text-start", id: part.id })
    }
    return part.id
  }

  private closeParts(out: Array<UiChunk>): void {
    for (const part of this.parts.values()) {
      if (part.id === undefined) continue
      out.push({ type: "text-end", id: part.id })
      part.id = undefined
    }
  }
}
