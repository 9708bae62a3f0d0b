/**
 * The control stream on Redis (SPEC §5): `<prefix>:{taskId}:ctl`, one entry
 * per command. Shared by the Redis log layer (which appends) and the
 * publisher SDK (which reads, as the workflow).
 *
 * The stream is keyed by task id only, so each entry names the agent it was
 * sent to (`agent_id`): a reader for (agentId, taskId) acknowledges and skips
 * the entries of another agent — a command reaches only its own agent's workflow.
 *
 * Appending is one script so the idempotency check and the XADD are atomic.
 * Reading uses a consumer group per reader name: Redis keeps the reader's
 * position and its delivered-but-unacknowledged entries, so a restarted
 * worker first gets what it had not acknowledged, then new commands — it
 * neither loses nor repeats an acknowledged one, with no cursor of our own.
 */
import { type CommandDraft, commandFields, commandIsFor, commandOfEntry, type ControlCommand } from "../events/control.ts"
import { taskKeys } from "./keys.ts"
import type { RedisClient } from "./redisTarget.ts"

// KEYS[1] control stream, KEYS[2] idempotency key (optional)
// ARGV[1] command_id, ARGV[2] IDEMPOTENCY_S, ARGV[3] MAXLEN, ARGV[4] RETENTION_S, ARGV[5..] entry fields
const APPEND_COMMAND_SCRIPT = `
if KEYS[2] then
  local seen = redis.call('GET', KEYS[2])
  if seen then return seen end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[4])
if KEYS[2] then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2]) end
return ARGV[1]
`

export interface ControlSettings {
  readonly prefix: string
  readonly historyMax: number
  readonly retentionSeconds: number
  readonly idempotencySeconds: number
}

type AppendCommand = (...args: Array<string | number>) => Promise<string>

export const defineAppendCommand = (redis: RedisClient): void => {
  redis.defineCommand("taskstreamAppendCommand", { lua: APPEND_COMMAND_SCRIPT })
}

/**
 * Queue a command; resolves to its command_id (the first one's, for a repeated
 * idempotency key). The stream keeps the newest HISTORY_MAX commands and
 * expires RETENTION_S after the last one.
 */
export const appendCommand = (
  redis: RedisClient,
  settings: ControlSettings,
  task: { readonly agentId: string; readonly taskId: string },
  draft: CommandDraft
): Promise<string> => {
  const keys = taskKeys(settings.prefix, task.taskId)
  const allKeys = draft.idempotencyKey === undefined ? [keys.control] : [keys.control, keys.commandIdempotency(draft.idempotencyKey)]
  const commandId = crypto.randomUUID()
  const append = (redis as unknown as { taskstreamAppendCommand: AppendCommand }).taskstreamAppendCommand
  return append.call(
    redis,
    allKeys.length,
    ...allKeys,
    commandId,
    settings.idempotencySeconds,
    settings.historyMax,
    settings.retentionSeconds,
    ...commandFields(commandId, task.agentId, draft, new Date().toISOString())
  )
}

type GroupReply = Array<[key: string, entries: Array<[id: string, fields: Array<string> | null]>]> | null

const READ_COUNT = 100
/** How long one blocking read waits; the reader loops, so this only bounds how late a close is noticed. */
const BLOCK_MS = 2000

/**
 * Reads the control stream of one agent's task as the consumer group `group`.
 * `blocking` is a connection of the reader's own (XREADGROUP BLOCK holds it);
 * `redis` carries the acknowledgements.
 */
export class RedisCommandReader {
  private readonly key: string
  private groupReady = false
  /** Replaying this group's unacknowledged entries (after this id) before reading new ones. */
  private pendingAfter: string | undefined = "0"
  private buffered: Array<ControlCommand> = []

  constructor(
    private readonly blocking: RedisClient,
    private readonly redis: RedisClient,
    prefix: string,
    private readonly task: { readonly agentId: string; readonly taskId: string },
    private readonly group: string
  ) {
    this.key = taskKeys(prefix, task.taskId).control
  }

  /** The next command not yet acknowledged by this group; waits for one. */
  async next(): Promise<ControlCommand> {
    for (;;) {
      const command = this.buffered.shift()
      if (command !== undefined) return command
      await this.fill()
    }
  }

  ack(id: string): Promise<unknown> {
    return this.redis.xack(this.key, this.group, id)
  }

  private async fill(): Promise<void> {
    if (!this.groupReady) {
      await this.blocking.xgroup("CREATE", this.key, this.group, "0", "MKSTREAM").catch((error: Error) => {
        if (!/BUSYGROUP/.test(error.message)) throw error
      })
      this.groupReady = true
    }
    const from = this.pendingAfter ?? ">"
    let reply: GroupReply
    try {
      // The command method, not `call`: ioredis normalises its reply (a map under RESP3) to [[key, entries]].
      const read = this.blocking.xreadgroup as unknown as (...args: Array<string | number>) => Promise<GroupReply>
      reply = await read.call(
        this.blocking,
        "GROUP", this.group, this.group, "COUNT", READ_COUNT,
        ...(from === ">" ? ["BLOCK", BLOCK_MS] : []),
        "STREAMS", this.key, from
      )
    } catch (error) {
      // The stream expired (RETENTION_S after its last command) and took the group with it: start over.
      if (error instanceof Error && /NOGROUP/.test(error.message)) {
        this.groupReady = false
        this.pendingAfter = "0"
        return
      }
      throw error
    }
    const entries = reply?.[0]?.[1] ?? []
    if (this.pendingAfter !== undefined && entries.length === 0) this.pendingAfter = undefined
    for (const [id, fields] of entries) {
      if (this.pendingAfter !== undefined) this.pendingAfter = id
      // A pending entry trimmed away meanwhile comes back without fields: nothing to deliver.
      const command = fields === null ? undefined : commandOfEntry(id, fields)
      if (command !== undefined && commandIsFor(command, this.task.agentId)) this.buffered.push(command)
      else await this.ack(id)
    }
  }
}
