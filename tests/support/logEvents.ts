/** Hand-made log events for pure unit tests of the fold and the encoders. */
import { LogEvent } from "../../src/events/envelope.ts"
import { builtinRegistry, type EventType } from "../../src/events/registry.ts"

export const TASK = { agentId: "agent-1", taskId: "task-9" }

/** A stream of events with increasing ids (`1000-0`, `1000-1`, …); ephemeral ones get none. */
export const eventMaker = () => {
  let seq = 0
  return (type: EventType, data: Record<string, unknown> = {}): LogEvent => {
    const draft = LogEvent.fromDraft(builtinRegistry, undefined, TASK, type, "2026-11-24T10:00:00.000Z", data)
    return draft.ephemeral ? draft : LogEvent.fromDraft(builtinRegistry, `1000-${seq++}`, TASK, type, draft.time, data)
  }
}
