/**
 * AG-UI over SSE (SPEC §9.2): a task's events as the run of an AG-UI agent,
 * for `@ag-ui/client`'s HttpAgent and CopilotKit. Pure: (event, this stream's
 * state) → `data: <AG-UI event JSON>` frames. The stream begins RUN_STARTED,
 * STATE_SNAPSHOT; every stored event is followed by a STATE_DELTA; before
 * RUN_FINISHED / RUN_ERROR every open message, tool call and step is closed,
 * so AG-UI's verifier accepts the stream.
 *
 * The `id:` of an event's frames is its taskstream id, written on the last
 * of them: a client that resumes with it has received them all.
 */
import type { LogEvent } from "../../events/envelope.ts"
import { endStatusOf, foldEvent, stateDelta, type TaskState } from "../../events/state.ts"
import { type CloseReason, cutShort } from "../connections.ts"
import type { SseCodec } from "../sse.ts"
import { LlmCalls } from "./llmCalls.ts"

export interface AgUiRun {
  readonly threadId: string
  readonly runId: string
}

type AgUiEvent = { readonly type: string } & Record<string, unknown>

const dataFrame = (event: AgUiEvent): string => `data: ${JSON.stringify(event)}\n\n`

/** The frames of one cause, the `id:` on the last so a resume point covers them all. */
const frames = (events: ReadonlyArray<AgUiEvent>, id: string | undefined): string => {
  let text = ""
  for (let i = 0; i < events.length; i++) {
    text += i === events.length - 1 && id !== undefined ? `id: ${id}\n${dataFrame(events[i])}` : dataFrame(events[i])
  }
  return text
}

/** A tool result as AG-UI's content: text as is, anything else as JSON. */
const contentText = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value ?? null))

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

export class AgUiCodec implements SseCodec {
  private readonly calls = new LlmCalls()
  /** Open steps by name. */
  private readonly steps = new Set<string>()
  /** The message id of the latest LLM call: tool calls it requested hang under it. */
  private lastMessageId: string | undefined
  private finished = false

  constructor(private readonly run: AgUiRun, private state: TaskState) {}

  open(): string {
    return frames([
      { type: "RUN_STARTED", threadId: this.run.threadId, runId: this.run.runId },
      { type: "STATE_SNAPSHOT", snapshot: this.state }
    ], undefined)
  }

  event(event: LogEvent): string {
    if (this.finished) return ""
    const timestamp = Date.parse(event.time)
    const out: Array<AgUiEvent> = []
    const emit = (agUi: AgUiEvent) => void out.push(Number.isNaN(timestamp) ? agUi : { ...agUi, timestamp })
    const data = event.data
    switch (event.type) {
      case "WorkflowStepStarted": {
        const stepName = text(data.name) ?? String(data.step)
        // AG-UI refuses a step started twice: close the earlier one of that name first.
        if (this.steps.has(stepName)) emit({ type: "STEP_FINISHED", stepName })
        this.steps.add(stepName)
        emit({ type: "STEP_STARTED", stepName })
        break
      }
      case "WorkflowStepCompleted": {
        const stepName = text(data.name) ?? String(data.step)
        // A step started before this stream's resume point was never opened here.
        if (this.steps.delete(stepName)) emit({ type: "STEP_FINISHED", stepName })
        break
      }
      case "WorkflowLLMCallStarted": {
        const key = this.calls.keyOfStart(event)
        if (this.calls.get(key) === undefined) {
          this.calls.start(key)
          this.lastMessageId = key
          emit({ type: "TEXT_MESSAGE_START", messageId: key, role: "assistant" })
        }
        break
      }
      case "WorkflowLLMCallChunk": {
        const key = this.calls.keyOf(event)
        if (key === undefined) break
        const call = this.calls.get(key) ?? this.startLate(key, emit)
        const delta = this.calls.textOf(call, event)
        if (delta !== "") emit({ type: "TEXT_MESSAGE_CONTENT", messageId: key, delta })
        break
      }
      case "WorkflowLLMCallCompleted": {
        const key = this.calls.keyOf(event) ?? this.calls.keyOfStart(event)
        const call = this.calls.get(key) ?? this.startLate(key, emit)
        const content = data.content
        if (call.sent === 0 && typeof content === "string" && content !== "") {
          emit({ type: "TEXT_MESSAGE_CONTENT", messageId: key, delta: content })
        }
        this.calls.complete(key)
        emit({ type: "TEXT_MESSAGE_END", messageId: key })
        break
      }
      case "WorkflowToolCallStarted": {
        const toolCallId = String(data.tool_call_id)
        emit({
          type: "TOOL_CALL_START",
          toolCallId,
          toolCallName: String(data.tool_name),
          ...(this.lastMessageId === undefined ? {} : { parentMessageId: this.lastMessageId })
        })
        emit({ type: "TOOL_CALL_ARGS", toolCallId, delta: JSON.stringify(data.arguments ?? {}) })
        emit({ type: "TOOL_CALL_END", toolCallId })
        break
      }
      case "WorkflowToolCallCompleted": {
        // AG-UI has no failed result: a failed call's result (or a note) is its content.
        const content = data.success === false && (data.result === undefined || data.result === null)
          ? "tool call failed"
          : contentText(data.result)
        emit({ type: "TOOL_CALL_RESULT", messageId: event.id ?? `result-${data.tool_call_id}`, toolCallId: String(data.tool_call_id), content, role: "tool" })
        break
      }
      default:
        if (!event.terminal) emit({ type: "CUSTOM", name: event.type, value: data })
    }
    if (event.terminal) this.closeAll(emit)
    this.stateChanged(event, emit)
    if (event.terminal) {
      this.finished = true
      const status = endStatusOf(event)
      emit(
        status === "completed"
          ? { type: "RUN_FINISHED", threadId: this.run.threadId, runId: this.run.runId, ...(data.final_response === undefined || data.final_response === null ? {} : { result: data.final_response }) }
          : status === "failed"
          ? { type: "RUN_ERROR", message: text(data.error) ?? "failed", ...(text(data.error_type) === undefined ? {} : { code: text(data.error_type) }) }
          : { type: "RUN_ERROR", message: text(data.reason) ?? "cancelled", code: "cancelled" }
      )
    }
    return frames(out, event.id)
  }

  resync(oldest: string): string {
    return frames([{ type: "CUSTOM", name: "resync", value: { reason: "history_trimmed", oldest } }], undefined)
  }

  heartbeat(): string {
    return ": heartbeat\n\n"
  }

  /**
   * After a terminal event the run is finished already; any other end is an
   * error the client must see (a shutdown or an expired token: reconnect with
   * the last id).
   */
  end(reason: CloseReason): string {
    if (this.finished) return ""
    this.finished = true
    const out: Array<AgUiEvent> = []
    this.closeAll((event) => void out.push(event))
    out.push({ type: "RUN_ERROR", message: cutShort(reason), code: reason })
    return frames(out, undefined)
  }

  /** A call started before this stream's resume point: open its message now. */
  private startLate(key: string, emit: (event: AgUiEvent) => void) {
    this.lastMessageId = key
    emit({ type: "TEXT_MESSAGE_START", messageId: key, role: "assistant" })
    return this.calls.start(key)
  }

  private closeAll(emit: (event: AgUiEvent) => void): void {
    for (const call of this.calls.drain()) emit({ type: "TEXT_MESSAGE_END", messageId: call.key })
    for (const stepName of this.steps) emit({ type: "STEP_FINISHED", stepName })
    this.steps.clear()
  }

  private stateChanged(event: LogEvent, emit: (event: AgUiEvent) => void): void {
    const next = foldEvent(this.state, event)
    if (next === this.state) return
    const delta = stateDelta(this.state, next)
    this.state = next
    if (delta.length > 0) emit({ type: "STATE_DELTA", delta })
  }
}
