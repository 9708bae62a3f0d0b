/**
 * Control commands (SPEC §4.2, §5): what a client asks a running workflow to
 * do. They travel the other way from events — client → gateway → the task's
 * control stream → the workflow — and are never part of the event log.
 */
import { Schema } from "effect"

export const CommandKinds = ["pause", "resume", "cancel"] as const
export type CommandKind = (typeof CommandKinds)[number]
export const CommandKind = Schema.Literals(CommandKinds)

/** Where a command came from, recorded in the `source` field. */
export type CommandSource = "ws" | "rest" | (string & {})

export const REASON_MAX = 1000

/** A command as a client asks for it. */
export interface CommandDraft {
  readonly command: CommandKind
  readonly reason?: string | undefined
  readonly source: CommandSource
  /** Asking twice with the same key (within IDEMPOTENCY_S) queues the command once and returns its first id. */
  readonly idempotencyKey?: string | undefined
}

/** A command as the workflow receives it from the control stream. */
export interface ControlCommand {
  /** The control stream entry id (`<ms>-<seq>`): the consumer's position. */
  readonly id: string
  readonly commandId: string
  /**
   * The agent the command was sent to. The control stream is keyed by task
   * only, so a reader for (agentId, taskId) skips the entries of another agent.
   * Undefined for an entry written without the field (before it existed): no
   * reader takes it, since nothing says whose it is.
   */
  readonly agentId: string | undefined
  readonly command: CommandKind
  /** Empty when none was given. */
  readonly reason: string
  readonly time: string
  readonly source: string
}

/** A control stream entry's fields, flat as Redis stores them (the field names of SPEC §5, plus `agent_id`). */
export const commandFields = (commandId: string, agentId: string, draft: CommandDraft, time: string): Array<string> => [
  "command_id",
  commandId,
  "agent_id",
  agentId,
  "command",
  draft.command,
  "reason",
  draft.reason ?? "",
  "time",
  time,
  "source",
  draft.source
]

const EntryFields = Schema.Struct({
  command_id: Schema.String,
  agent_id: Schema.optionalKey(Schema.String),
  command: CommandKind,
  reason: Schema.String,
  time: Schema.String,
  source: Schema.String
})
const decodeEntryFields = Schema.decodeUnknownSync(EntryFields)

/** Read a control stream entry back; throws on an entry not written by `commandFields`. */
export const commandOfEntry = (id: string, fields: ReadonlyArray<string>): ControlCommand => {
  const record: Record<string, string> = {}
  for (let i = 0; i < fields.length; i += 2) record[fields[i]] = fields[i + 1]
  const entry = decodeEntryFields(record)
  return {
    id,
    commandId: entry.command_id,
    agentId: entry.agent_id,
    command: entry.command,
    reason: entry.reason,
    time: entry.time,
    source: entry.source
  }
}

/** Whether a reader of the commands of `agentId`'s task takes `command` (it acknowledges and skips the others). */
export const commandIsFor = (command: ControlCommand, agentId: string): boolean => command.agentId === agentId

/**
 * The stored idempotency key of a command sent by `subject` to a task: every
 * part JSON-encoded, so no choice of subject, agent or key can make two
 * different requests collide (`a:b` + `c` vs `a` + `b:c`).
 */
export const commandIdempotencyKey = (subject: string, agentId: string, command: CommandKind, key: string): string =>
  JSON.stringify([subject, agentId, command, key])
