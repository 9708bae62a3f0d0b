/**
 * One task's timeline in the page: a row per durable event (keyed by its id,
 * so an event can never be shown twice), each LLM call's text growing as its
 * chunks stream (replaced by a `compacted` chunk, which carries the text so
 * far after a reload or reconnect — SPEC §8.2; the stored `content` of the
 * completion when no chunk came), the running cost, the workflow's state and
 * the end banner. Fields a publisher left out are left out of the row; event
 * types the page does not know are shown by name. Categories and endings come
 * from the gateway's registry (custom types included): any terminal type ends
 * the timeline with the ending the registry gives it.
 */
import { BuiltinEventTypes, categoryOf, endingOf, type EventType, type EventTypeTable, type TaskEvent } from "../client/index.ts"
import { el, json, money, seconds, timeOfDay } from "./view.ts"

export type WorkflowState = "running" | "paused" | "completed" | "failed" | "cancelled"

const Labels: Record<EventType, string> = {
  WorkflowStarted: "Started",
  WorkflowCompleted: "Completed",
  WorkflowFailed: "Failed",
  WorkflowCancelled: "Cancelled",
  WorkflowLLMCallStarted: "LLM call",
  WorkflowLLMCallChunk: "LLM chunk",
  WorkflowLLMCallCompleted: "LLM call done",
  WorkflowToolCallStarted: "Tool call",
  WorkflowToolCallCompleted: "Tool result",
  WorkflowBudgetWarning: "Budget warning",
  WorkflowBudgetExceeded: "Budget exceeded",
  WorkflowPaused: "Paused",
  WorkflowResumed: "Resumed",
  WorkflowStepStarted: "Step started",
  WorkflowStepCompleted: "Step done"
}

/** What a row may read of a payload: any field may be missing or null. */
type Fields = Readonly<Record<string, unknown>>

const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value)
const textOf = (value: unknown): string => (value == null ? "" : typeof value === "string" ? value : json(value, 200))

/** A name/value pair, or nothing when the value is missing. */
const kv = (name: string, value: unknown, format: (value: never) => string = textOf) =>
  value == null || value === "" ? "" : el("span", { class: "kv" }, `${name} `, el("b", {}, format(value as never)))

const budgetBar = (cost: unknown, limit: unknown) => {
  if (!isNumber(cost) || !isNumber(limit)) return kv("cost", cost, money)
  const share = limit > 0 ? cost / limit : 1
  return el(
    "span",
    {},
    el("span", { class: share >= 1 ? "bar over" : "bar" }, el("span", { style: `width:${Math.min(100, share * 100).toFixed(1)}%` })),
    `${money(cost)} of ${money(limit)} (${(share * 100).toFixed(0)}%)`
  )
}

const stepName = (data: Fields) => (data.step == null ? textOf(data.name) : `#${textOf(data.step)}${data.name ? ` ${textOf(data.name)}` : ""}`)

/** The key fields of an event, as the row's detail cell. */
const detail = (type: string, data: Fields): Array<Node | string> => {
  switch (type) {
    case "WorkflowStarted":
      return [textOf(data.goal), kv(" · budget", data.budget_limit, money)]
    case "WorkflowCompleted":
      return [kv("total", data.total_cost, money), kv("iterations", data.iterations_completed)]
    case "WorkflowFailed":
      return [textOf(data.error), kv(" · type", data.error_type)]
    case "WorkflowCancelled":
    case "WorkflowPaused":
    case "WorkflowResumed":
      return [textOf(data.reason)]
    case "WorkflowLLMCallStarted":
      return [kv("model", data.model), kv("est.", data.estimated_cost, money)]
    case "WorkflowLLMCallCompleted": {
      const usage = (data.usage ?? {}) as Fields
      return [
        kv("model", data.model),
        kv("cost", data.cost, money),
        isNumber(usage.prompt_tokens) ? kv("tokens", `${usage.prompt_tokens} → ${isNumber(usage.completion_tokens) ? usage.completion_tokens : "?"}`) : ""
      ]
    }
    case "WorkflowToolCallStarted":
      return [el("code", {}, `${textOf(data.tool_name) || "tool"}(${json(data.arguments ?? {}, 140)})`)]
    case "WorkflowToolCallCompleted":
      return [
        kv(data.success === false ? "✗" : "✓", data.tool_name),
        kv("in", data.execution_time_ms, seconds),
        el("code", {}, json(data.result ?? null, 160))
      ]
    case "WorkflowBudgetWarning":
    case "WorkflowBudgetExceeded":
      return [budgetBar(data.cost, data.limit)]
    case "WorkflowStepStarted":
      return [el("span", { class: "kv" }, el("b", {}, stepName(data)))]
    case "WorkflowStepCompleted":
      return [el("span", { class: "kv" }, el("b", {}, stepName(data))), kv("in", data.duration_ms, seconds)]
    default:
      return [el("code", {}, json(data, 200))]
  }
}

export interface TimelineView {
  readonly list: HTMLOListElement
  readonly onState: (state: WorkflowState) => void
  readonly onCost: (cost: number) => void
  readonly onCount: (count: number) => void
  readonly onGoal: (goal: string) => void
  readonly onEnd: (state: WorkflowState, text: string) => void
}

/** An LLM call's fields that say which call a chunk or a completion belongs to. */
interface CallFields {
  readonly call_id?: string | null
  readonly chunk?: string
  readonly compacted?: boolean
  readonly content?: unknown
}

export class Timeline {
  private readonly rows = new Map<string, HTMLElement>()
  /** The text box of each LLM call still streaming, by `call_id` (or the started event's id without one), oldest first. */
  private readonly openCalls = new Map<string, HTMLElement>()
  private cost = 0

  constructor(private readonly view: TimelineView, private readonly types: EventTypeTable = BuiltinEventTypes) {}

  get size(): number {
    return this.rows.size
  }

  add(event: TaskEvent, live: boolean): void {
    if (event.type === "WorkflowLLMCallChunk") return this.chunk(event.data as CallFields)
    if (event.id === undefined || this.rows.has(event.id)) return
    const category = categoryOf(this.types, event.type) ?? "custom"
    const data = (event.data ?? {}) as Fields
    const row = el(
      "li",
      { class: `event cat-${category}`, "data-id": event.id, "data-type": event.type },
      el("time", { datetime: event.time }, timeOfDay(event.time)),
      el("span", { class: "cat" }, category),
      el("span", { class: "type" }, Labels[event.type] ?? event.type),
      el("span", { class: "detail" }, ...detail(event.type, data))
    )
    if (live) row.classList.add("new")
    if (event.type === "WorkflowToolCallCompleted" && data.success === false) row.classList.add("failed")
    this.rows.set(event.id, row)
    // Follow the newest event unless the reader scrolled up to look at older ones.
    const scroller = this.view.list.closest<HTMLElement>(".task")
    const following = scroller === null || scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80
    this.view.list.append(row)
    if (following && scroller !== null) scroller.scrollTop = scroller.scrollHeight
    this.view.onCount(this.rows.size)
    this.track(event, data, row)
  }

  /** The open call a chunk or completion belongs to: its `call_id`, else the most recent open call. */
  private callKey(fields: CallFields): string | undefined {
    if (fields.call_id != null) return this.openCalls.has(fields.call_id) ? fields.call_id : undefined
    return [...this.openCalls.keys()].at(-1)
  }

  private chunk(fields: CallFields): void {
    const key = this.callKey(fields)
    const box = key === undefined ? undefined : this.openCalls.get(key)
    if (box === undefined || typeof fields.chunk !== "string") return
    if (fields.compacted) box.textContent = fields.chunk
    else box.append(fields.chunk)
  }

  private track(event: TaskEvent, data: Fields, row: HTMLElement): void {
    switch (event.type) {
      case "WorkflowStarted":
        this.view.onGoal(textOf(data.goal))
        return
      case "WorkflowLLMCallStarted": {
        const box = el("div", { class: "stream open" })
        row.append(box)
        this.openCalls.set(typeof data.call_id === "string" ? data.call_id : event.id!, box)
        return
      }
      case "WorkflowLLMCallCompleted": {
        const fields = data as CallFields
        const key = this.callKey(fields)
        const content = fields.content == null ? undefined : textOf(fields.content)
        const box = key === undefined ? undefined : this.openCalls.get(key)
        if (key !== undefined) this.openCalls.delete(key)
        // The stored content is the whole answer (after a reload the chunks are gone); without a box, show it here.
        if (box !== undefined) {
          if (content !== undefined) box.textContent = content
          box.classList.remove("open")
        } else if (content !== undefined) {
          row.append(el("div", { class: "stream" }, content))
        }
        this.setCost(isNumber(data.total_cost) ? data.total_cost : this.cost + (isNumber(data.cost) ? data.cost : 0))
        return
      }
      case "WorkflowPaused":
        this.view.onState("paused")
        return
      case "WorkflowResumed":
        this.view.onState("running")
        return
    }
    const state = endingOf(this.types, event.type)
    if (state === undefined) return
    for (const box of this.openCalls.values()) box.classList.remove("open")
    this.openCalls.clear()
    if (state === "completed" && isNumber(data.total_cost)) this.setCost(data.total_cost)
    const text = state === "completed"
      ? `Completed · total cost ${money(this.cost)}`
      : state === "failed"
      ? `Failed${data.error ? `: ${textOf(data.error)}` : ""}`
      : `Cancelled${data.reason ? `: ${textOf(data.reason)}` : ""}`
    this.view.onState(state)
    this.view.onEnd(state, text)
  }

  private setCost(cost: number): void {
    this.cost = cost
    this.view.onCost(cost)
  }
}
