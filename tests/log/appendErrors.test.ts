/** A refused append reads the same over HTTP, through the SDKs and from the append script: one mapping. */
import { describe, expect, it } from "bun:test"
import { InvalidEvent } from "../../src/events/draft.ts"
import { toApiError } from "../../src/http/respond.ts"
import { ReplicationTimeoutError, appendErrorOf } from "../../src/log/appendScript.ts"
import { AgentMismatch, type AppendError, type AppendErrorCode, LogUnavailable, ReplicationTimeout, TaskEnded } from "../../src/log/EventLog.ts"
import { publishErrorOf } from "../../src/publisher/index.ts"

const task = { agentId: "a", taskId: "t-1" }

describe("append errors", () => {
  const errors: ReadonlyArray<[AppendError, AppendErrorCode, string | undefined]> = [
    [new AgentMismatch({ taskId: "t-1" }), "task_agent_mismatch", "taskId"],
    [new TaskEnded({ taskId: "t-1", message: "task t-1 has ended" }), "task_ended", "taskId"],
    [new InvalidEvent({ field: "data.step", message: "expected a number" }), "invalid_event", "data.step"],
    [new ReplicationTimeout({ message: "0 of 1 replicas" }), "replication_timeout", undefined],
    [new LogUnavailable({ message: "redis: connection refused" }), "log_unavailable", undefined]
  ]

  it("gives HTTP and the SDK the same code, field and message (the SDK says unavailable for log_unavailable)", () => {
    for (const [error, code, field] of errors) {
      const api = toApiError(error)
      const sdk = publishErrorOf(error)
      expect(api.code).toBe(code)
      expect(sdk.code).toBe(code === "log_unavailable" ? "unavailable" : code)
      expect(api.field).toBe(field)
      expect(sdk.field).toBe(field)
      if (code !== "log_unavailable") expect(sdk.message).toBe(api.message)
    }
    expect(toApiError(errors[0][0]).message).toBe("task t-1 belongs to another agent")
  })

  it("reads the append script's errors as the log's typed errors", () => {
    expect(appendErrorOf(new Error("TS_AGENT_MISMATCH t-1 belongs to b"), task)).toMatchObject({ _tag: "AgentMismatch", taskId: "t-1" })
    expect(appendErrorOf(new Error("TS_TASK_ENDED task t-1 has ended"), task)).toMatchObject({ _tag: "TaskEnded", message: "task t-1 has ended" })
    expect(appendErrorOf(new Error("TS_BAD_DATA not JSON"), task)).toMatchObject({ _tag: "InvalidEvent", field: "data", message: "not JSON" })
    expect(appendErrorOf(new Error("TS_UNKNOWN_TYPE Foo"), task)).toMatchObject({ _tag: "InvalidEvent", field: "type" })
    expect(appendErrorOf(new ReplicationTimeoutError(1, 0), task)).toMatchObject({ _tag: "ReplicationTimeout" })
    expect(appendErrorOf(new Error("Connection is closed."), task)).toMatchObject({ _tag: "LogUnavailable", message: "redis: Connection is closed." })
  })
})
