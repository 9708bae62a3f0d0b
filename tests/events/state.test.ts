/** The task-state fold (SPEC §9.1): pure, no I/O. */
import { describe, expect, it } from "bun:test"
import { foldEvents, InitialState, stateDelta } from "../../src/events/state.ts"
import { eventMaker } from "../support/logEvents.ts"

describe("Task state fold", () => {
  it("folds a whole run into status, goal, step, cost, budget, counts and the last id", () => {
    const e = eventMaker()
    const state = foldEvents(InitialState, [
      e("WorkflowStarted", { goal: "write a poem", budget_limit: 1 }),
      e("WorkflowStepStarted", { step: 1, name: "draft" }),
      e("WorkflowLLMCallStarted", { model: "m" }),
      e("WorkflowLLMCallChunk", { chunk: "x", chunk_index: 0 }),
      e("WorkflowLLMCallCompleted", { model: "m", total_cost: 0.25 }),
      e("WorkflowToolCallStarted", { tool_name: "t", tool_call_id: "c1" }),
      e("WorkflowBudgetWarning", { cost: 0.8, limit: 1, usage_percentage: 80 }),
      e("WorkflowStepStarted", { step: 2 }),
      e("WorkflowCompleted", { total_cost: 0.9 })
    ])
    expect(state).toEqual({
      status: "completed",
      goal: "write a poem",
      step: { step: 2, name: null },
      cost: 0.9,
      budget_limit: 1,
      usage_percentage: 80,
      llm_calls: 1,
      tool_calls: 1,
      events: 8,
      last_event_id: "1000-7",
      updated_at: "2026-11-24T10:00:00.000Z"
    })
  })

  it("is paused after WorkflowPaused until WorkflowResumed, whatever comes between", () => {
    const e = eventMaker()
    const paused = foldEvents(InitialState, [e("WorkflowStarted"), e("WorkflowPaused", { reason: "user" }), e("WorkflowStepStarted", { step: 1 })])
    expect(paused.status).toBe("paused")
    expect(foldEvents(paused, [e("WorkflowResumed")]).status).toBe("running")
  })

  it("takes its status from the terminal type, even while paused", () => {
    for (const [type, status] of [["WorkflowFailed", "failed"], ["WorkflowCancelled", "cancelled"], ["WorkflowCompleted", "completed"]] as const) {
      const e = eventMaker()
      expect(foldEvents(InitialState, [e("WorkflowPaused"), e(type, { error: "boom" })]).status).toBe(status)
    }
  })

  it("derives usage from an exceeded budget, and the limit from budget events when the start named none", () => {
    const e = eventMaker()
    const state = foldEvents(InitialState, [e("WorkflowStarted"), e("WorkflowBudgetExceeded", { cost: 3, limit: 2 })])
    expect(state).toMatchObject({ cost: 3, budget_limit: 2, usage_percentage: 150 })
  })

  it("ignores ephemeral chunks (they are not stored)", () => {
    const e = eventMaker()
    const state = foldEvents(InitialState, [e("WorkflowLLMCallChunk", { chunk: "x", chunk_index: 0 })])
    expect(state).toBe(InitialState)
  })

  it("describes a change as RFC 6902 replace operations of the changed keys only", () => {
    const e = eventMaker()
    const before = foldEvents(InitialState, [e("WorkflowStepStarted", { step: 1, name: "a" })])
    const after = foldEvents(before, [e("WorkflowToolCallStarted", { tool_name: "t", tool_call_id: "c" })])
    expect(stateDelta(before, after)).toEqual([
      { op: "replace", path: "/tool_calls", value: 1 },
      { op: "replace", path: "/events", value: 2 },
      { op: "replace", path: "/last_event_id", value: "1000-1" }
    ])
    expect(stateDelta(after, after)).toEqual([])
  })
})
