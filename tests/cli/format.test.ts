import { describe, expect, it } from "bun:test"
import type { TaskEvent } from "../../src/client/index.ts"
import { formatLine } from "../../src/cli/format.ts"

const at = (type: string, data: Record<string, unknown>) =>
  ({ id: "1-0", type, agentId: "a", taskId: "t", time: "2026-11-24T10:00:00.000Z", data }) as unknown as TaskEvent

describe("taskstream-tail lines", () => {
  it("print a built-in event's key fields under its category", () => {
    expect(formatLine(at("WorkflowStepStarted", { step: 1, name: "plan" }), false)).toBe(
      "10:00:00.000 step      WorkflowStepStarted        step=1 name=\"plan\""
    )
  })

  it("print an event of a custom type (EVENT_TYPES_FILE) with its payload, under `custom`", () => {
    expect(formatLine(at("ApprovalRequested", { approver: "ann" }), false)).toBe(
      "10:00:00.000 custom    ApprovalRequested          {\"approver\":\"ann\"}"
    )
  })
})
