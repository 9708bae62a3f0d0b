/**
 * The embedded log's control stream: per task, the newest HISTORY_MAX
 * commands with `<ms>-<seq>` ids, idempotency keys, and per reader name the
 * set of acknowledged ids — the in-process equivalent of a Redis consumer
 * group, so a restarted reader resumes after what it acknowledged. Like the
 * Redis stream, a task's commands are forgotten RETENTION_S after its last one.
 */
import { type CommandDraft, commandIsFor, type ControlCommand } from "../events/control.ts"
import { compareIds, type EventId, formatEventId, parseEventId, ZeroId } from "../events/envelope.ts"

interface TaskControl {
  readonly commands: Array<ControlCommand & EventId>
  lastId: EventId
  readonly acked: Map<string, Set<string>>
  readonly waiters: Set<() => void>
  expiresAt: number
}

interface Remembered {
  readonly commandId: string
  readonly expiresAt: number
}

export class MemoryControl {
  private readonly tasks = new Map<string, TaskControl>()
  private readonly idempotency = new Map<string, Remembered>()

  constructor(
    private readonly settings: { readonly historyMax: number; readonly idempotencySeconds: number; readonly retentionSeconds: number }
  ) {}

  append(to: { readonly agentId: string; readonly taskId: string }, draft: CommandDraft): string {
    const { taskId } = to
    const now = Date.now()
    const key = draft.idempotencyKey === undefined ? undefined : `${taskId}\n${draft.idempotencyKey}`
    const seen = key === undefined ? undefined : this.idempotency.get(key)
    if (seen !== undefined && seen.expiresAt > now) return seen.commandId
    const task = this.task(taskId)
    task.expiresAt = now + this.settings.retentionSeconds * 1000
    task.lastId = now > task.lastId.ms ? { ms: now, seq: 0 } : { ms: task.lastId.ms, seq: task.lastId.seq + 1 }
    const commandId = crypto.randomUUID()
    task.commands.push({
      ...task.lastId,
      id: formatEventId(task.lastId),
      commandId,
      agentId: to.agentId,
      command: draft.command,
      reason: draft.reason ?? "",
      time: new Date(now).toISOString(),
      source: draft.source
    })
    if (task.commands.length > this.settings.historyMax) task.commands.splice(0, task.commands.length - this.settings.historyMax)
    if (key !== undefined) this.idempotency.set(key, { commandId, expiresAt: now + this.settings.idempotencySeconds * 1000 })
    for (const wake of [...task.waiters]) wake()
    return commandId
  }

  /**
   * The first command for `agentId` after `after` that `reader` has not
   * acknowledged, if any; commands for another agent on the way are
   * acknowledged and skipped, as the Redis reader does.
   */
  nextAfter(task: { readonly agentId: string; readonly taskId: string }, reader: string, after: EventId): ControlCommand | undefined {
    const stored = this.tasks.get(task.taskId)
    if (stored === undefined) return undefined
    const acked = stored.acked.get(reader)
    for (const command of stored.commands) {
      if (compareIds(command, after) <= 0 || acked?.has(command.id)) continue
      if (commandIsFor(command, task.agentId)) return command
      this.ack(task.taskId, reader, command.id)
    }
    return undefined
  }

  /** Call `wake` at the next append to the task; returns how to cancel that. */
  onAppend(taskId: string, wake: () => void): () => void {
    const waiters = this.task(taskId).waiters
    const once = () => {
      waiters.delete(once)
      wake()
    }
    waiters.add(once)
    return () => waiters.delete(once)
  }

  ack(taskId: string, reader: string, id: string): void {
    const task = this.task(taskId)
    const acked = task.acked.get(reader) ?? new Set()
    task.acked.set(reader, acked)
    acked.add(id)
    // Forget acknowledgements of commands trimmed away.
    const oldest = task.commands[0]
    if (oldest !== undefined) for (const old of acked) if (compareIds(parseEventId(old) ?? ZeroId, oldest) < 0) acked.delete(old)
  }

  sweep(now: number): void {
    for (const [key, entry] of this.idempotency) if (entry.expiresAt <= now) this.idempotency.delete(key)
    // A task with a waiting reader stays: the reader holds on to it.
    for (const [taskId, task] of this.tasks) if (task.expiresAt <= now && task.waiters.size === 0) this.tasks.delete(taskId)
  }

  private task(taskId: string): TaskControl {
    let task = this.tasks.get(taskId)
    if (task === undefined) {
      task = { commands: [], lastId: ZeroId, acked: new Map(), waiters: new Set(), expiresAt: Date.now() + this.settings.retentionSeconds * 1000 }
      this.tasks.set(taskId, task)
    }
    return task
  }
}
