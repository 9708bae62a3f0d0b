/**
 * One task's timeline in the page: a row per durable event (keyed by its id,
 * so an event can never be shown twice), LLM token chunks appended as growing
 * text to the call they belong to, the running cost, the workflow's state
 * (running, paused, ended) and the end banner.
 */
import { CategoryOf, EndOf, isTerminalType, type TaskEvent } from "../client/index.ts"
import { el, json, money, seconds, timeOfDay } from "./view.ts"

export type WorkflowState = "running" | "paused" | "completed" | "failed" | "cancelled"

const Labels: Record<TaskEvent["type"], string> = {
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

const kv = (name: string, value: string | Node) => el("span", { class: "kv" }, `${name} `, el("b", {}, value))

const budgetBar = (cost: number, limit: number) => {
  const share = limit > 0 ? cost / limit : 1
  return el(
    "span",
    {},
    el("span", { class: share >= 1 ? "bar over" : "bar" }, el("span", { style: `width:${Math.min(100, share * 100).toFixed(1)}%` })),
    `${money(cost)} of ${money(limit)} (${(share * 100).toFixed(0)}%)`
  )
}

/** The key fields of an event, as the row's detail cell. */
const detail = (event: TaskEvent): Array<Node | string> => {
  switch (event.type) {
    case "WorkflowStarted":
      return [event.data.goal ?? "", event.data.budget_limit == null ? "" : kv(" · budget", money(event.data.budget_limit))]
    case "WorkflowCompleted":
      return [kv("total", money(event.data.total_cost ?? 0)), kv("iterations", String(event.data.iterations_completed ?? "–"))]
    case "WorkflowFailed":
      return [event.data.error, event.data.error_type ? kv(" · type", event.data.error_type) : ""]
    case "WorkflowCancelled":
    case "WorkflowPaused":
    case "WorkflowResumed":
      return [event.data.reason ?? ""]
    case "WorkflowLLMCallStarted":
      return [kv("model", event.data.model), event.data.estimated_cost == null ? "" : kv("est.", money(event.data.estimated_cost))]
    case "WorkflowLLMCallCompleted": {
      const usage = event.data.usage as { prompt_tokens?: number; completion_tokens?: number } | null | undefined
      return [
        kv("model", event.data.model),
        event.data.cost == null ? "" : kv("cost", money(event.data.cost)),
        usage?.prompt_tokens == null ? "" : kv("tokens", `${usage.prompt_tokens} → ${usage.completion_tokens ?? "?"}`)
      ]
    }
    case "WorkflowToolCallStarted":
      return [el("code", {}, `${event.data.tool_name}(${json(event.data.arguments ?? {}, 140)})`)]
    case "WorkflowToolCallCompleted":
      return [
        kv(event.data.success ? "✓" : "✗", event.data.tool_name),
        event.data.execution_time_ms == null ? "" : kv("in", seconds(event.data.execution_time_ms)),
        el("code", {}, json(event.data.result ?? null, 160))
      ]
    case "WorkflowBudgetWarning":
    case "WorkflowBudgetExceeded":
      return [budgetBar(event.data.cost, event.data.limit)]
    case "WorkflowStepStarted":
      return [kv(`#${event.data.step}`, event.data.name ?? "")]
    case "WorkflowStepCompleted":
      return [kv(`#${event.data.step}`, event.data.name ?? ""), event.data.duration_ms == null ? "" : kv("in", seconds(event.data.duration_ms))]
    case "WorkflowLLMCallChunk":
      return [event.data.chunk]
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

export class Timeline {
  private readonly rows = new Map<string, HTMLElement>()
  /** The text box of the LLM call being streamed, if any. */
  private streaming: HTMLElement | undefined
  private cost = 0

  constructor(private readonly view: TimelineView) {}

  add(event: TaskEvent, live: boolean): void {
    if (event.type === "WorkflowLLMCallChunk") {
      this.streaming?.append(event.data.chunk)
      return
    }
    if (event.id === undefined || this.rows.has(event.id)) return
    const row = el(
      "li",
      { class: `event cat-${CategoryOf[event.type]}`, "data-id": event.id, "data-type": event.type },
      el("time", { datetime: event.time }, timeOfDay(event.time)),
      el("span", { class: "cat" }, CategoryOf[event.type]),
      el("span", { class: "type" }, Labels[event.type]),
      el("span", { class: "detail" }, ...detail(event))
    )
    if (live) row.classList.add("new")
    if (event.type === "WorkflowToolCallCompleted" && !event.data.success) row.classList.add("failed")
    this.rows.set(event.id, row)
    // Follow the newest event unless the reader scrolled up to look at older ones.
    const scroller = this.view.list.closest<HTMLElement>(".task")
    const following = scroller === null || scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80
    this.view.list.append(row)
    if (following && scroller !== null) scroller.scrollTop = scroller.scrollHeight
    this.view.onCount(this.rows.size)
    this.track(event, row)
  }

  private track(event: TaskEvent, row: HTMLElement): void {
    switch (event.type) {
      case "WorkflowStarted":
        this.view.onGoal(event.data.goal ?? "")
        return
      case "WorkflowLLMCallStarted":
        this.streaming = el("div", { class: "stream open" })
        row.append(this.streaming)
        return
      case "WorkflowLLMCallCompleted": {
        // After a reload the chunks before it are gone; the stored content is the whole answer.
        if (this.streaming !== undefined && typeof event.data.content === "string") this.streaming.textContent = event.data.content
        this.streaming?.classList.remove("open")
        this.streaming = undefined
        this.setCost(event.data.total_cost ?? this.cost + (event.data.cost ?? 0))
        return
      }
      case "WorkflowPaused":
        this.view.onState("paused")
        return
      case "WorkflowResumed":
        this.view.onState("running")
        return
    }
    if (isTerminalType(event.type)) {
      this.streaming?.classList.remove("open")
      const state = EndOf[event.type]
      if (event.type === "WorkflowCompleted" && event.data.total_cost != null) this.setCost(event.data.total_cost)
      const text = event.type === "WorkflowCompleted"
        ? `Completed · total cost ${money(this.cost)}`
        : event.type === "WorkflowFailed"
        ? `Failed: ${event.data.error}`
        : `Cancelled${event.data.reason ? `: ${event.data.reason}` : ""}`
      this.view.onState(state)
      this.view.onEnd(state, text)
    }
  }

  private setCost(cost: number): void {
    this.cost = cost
    this.view.onCost(cost)
  }
}
