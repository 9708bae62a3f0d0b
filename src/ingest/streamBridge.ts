/**
 * The stream side of the bridge (SPEC §10.2b): entries of `INGEST_STREAM`
 * (the message JSON in the field `event`) read through the consumer group
 * `INGEST_GROUP`. An entry is acknowledged once stored, or once moved to
 * `<INGEST_STREAM>:dead` (fields `event`, `reason`, `entry`) when it is bad;
 * while the log is unavailable it stays pending and is read again.
 *
 * Order: one instance reads at a time, holding the lease
 * `<INGEST_STREAM>:reader` (renewed while it reads, lapsing INGEST_CLAIM_MS
 * after its holder dies); a new holder first claims every pending entry
 * (XAUTOCLAIM), oldest first, then reads new ones. So entries are appended
 * in stream order, and a dead instance's entries are taken over by another
 * after INGEST_CLAIM_MS. The group is created at the start of the stream:
 * entries written before any gateway ran are read too.
 */
import { Effect, type Scope } from "effect"
import { blockingDuplicate, closeClient, closing, createClient, type RedisClient } from "../log/redisTarget.ts"
import { type RedisTarget } from "../redisUrl.ts"
import { GatewayLog, type LogLine } from "../observability/log.ts"
import { type Ingest, isOutcome } from "./ingest.ts"
import { derivedKey } from "./published.ts"

export interface StreamSettings {
  readonly stream: string
  readonly group: string
  readonly claimMs: number
}

type Entry = [id: string, fields: Array<string>]

const DEAD_LETTER_MAX = 10_000
const BATCH = 100

const RENEW_LEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0`

const RELEASE_LEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const fieldOf = (fields: Array<string>, name: string): string | undefined => {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]
  return undefined
}

class StreamReader {
  private stopped = false
  readonly consumer = `gateway-${crypto.randomUUID().slice(0, 8)}`
  private readonly lease: string
  private readonly dead: string

  constructor(
    private readonly commands: RedisClient,
    private readonly blocking: RedisClient,
    private readonly settings: StreamSettings,
    private readonly ingest: Ingest,
    private readonly logLine: LogLine
  ) {
    this.lease = `${settings.stream}:reader`
    this.dead = `${settings.stream}:dead`
  }

  stop(): void {
    this.stopped = true
  }

  /**
   * After the loop ended: hand the lease over at once rather than after
   * INGEST_CLAIM_MS, and leave the group without a trace when nothing of
   * ours is pending (a consumer's pending entries must stay for others to claim).
   */
  async leave(): Promise<void> {
    const { group, stream } = this.settings
    await this.commands.eval(RELEASE_LEASE, 1, this.lease, this.consumer)
    const pending = (await this.commands.xpending(stream, group, "-", "+", 1, this.consumer)) as Array<unknown>
    if (pending.length === 0) await this.commands.xgroup("DELCONSUMER", stream, group, this.consumer)
  }

  async run(): Promise<void> {
    const { claimMs, group, stream } = this.settings
    let leader = false
    while (!this.stopped) {
      try {
        const held = (await this.commands.eval(RENEW_LEASE, 1, this.lease, this.consumer, claimMs)) === 1
        if (!held) {
          leader = false
          await sleep(Math.max(50, Math.floor(claimMs / 3)))
          continue
        }
        if (!leader) {
          // New to the lease (or after a failure): take over every pending entry first, oldest first.
          await this.ensureGroup()
          if (!(await this.claimPending())) continue
        }
        leader = true
        const reply = (await this.blocking.xreadgroup(
          "GROUP", group, this.consumer, "COUNT", BATCH, "BLOCK", Math.max(10, Math.min(1000, Math.floor(claimMs / 3))), "STREAMS", stream, ">"
        )) as Array<[string, Array<Entry>]> | null
        if (reply !== null && !(await this.process(reply[0][1]))) leader = false
      } catch (error) {
        if (this.stopped) return
        leader = false
        this.logLine("warn", "bridge stream read failed; retrying", { stream, error: (error as Error).message })
        await sleep(1000)
      }
    }
  }

  private async ensureGroup(): Promise<void> {
    await this.commands.xgroup("CREATE", this.settings.stream, this.settings.group, "0", "MKSTREAM").catch((error: Error) => {
      if (!/BUSYGROUP/.test(error.message)) throw error
    })
  }

  /** Claim and process all pending entries of the group; false when one could not be stored yet. */
  private async claimPending(): Promise<boolean> {
    let cursor = "0-0"
    do {
      const [next, entries] = (await this.commands.xautoclaim(this.settings.stream, this.settings.group, this.consumer, 0, cursor, "COUNT", BATCH)) as [
        string,
        Array<Entry>
      ]
      if (!(await this.process(entries))) return false
      cursor = next
    } while (cursor !== "0-0" && !this.stopped)
    return true
  }

  /** Store entries in order, acknowledging each; stops (false) at one the log cannot take now. */
  private async process(entries: ReadonlyArray<Entry>): Promise<boolean> {
    const { group, stream } = this.settings
    for (const [id, fields] of entries) {
      const where = { stream, entry: id }
      const text = fieldOf(fields, "event")
      const parsed = text === undefined
        ? this.ingest.reject("stream", "the entry has no field 'event'", where)
        : this.ingest.parse("stream", text, () => derivedKey("msg", stream, id), where)
      const outcome = isOutcome(parsed) ? parsed : await this.ingest.append("stream", parsed, where)
      if (outcome._tag === "failed") {
        await sleep(500)
        return false
      }
      if (outcome._tag === "rejected") {
        await this.commands.xadd(this.dead, "MAXLEN", "~", DEAD_LETTER_MAX, "*", "event", text ?? "", "reason", outcome.reason, "entry", id)
      }
      await this.commands.xack(stream, group, id)
    }
    return true
  }
}

export const followStream = (target: RedisTarget, settings: StreamSettings, ingest: Ingest): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(Effect.service(GatewayLog), (logLine) => Effect.acquireRelease(
    Effect.sync(() => {
      // Queue through outages rather than fail: the loop waits for Redis to return.
      const commands = createClient(target, { failFast: false })
      commands.on("error", () => {})
      const blocking = blockingDuplicate(commands)
      blocking.on("error", () => {})
      const reader = new StreamReader(commands, blocking, settings, ingest, logLine)
      logLine("info", "bridge stream consumer", { stream: settings.stream, group: settings.group, consumer: reader.consumer })
      return { commands, blocking, reader, done: reader.run() }
    }),
    ({ blocking, commands, done, reader }) =>
      Effect.promise(async () => {
        reader.stop()
        closing(blocking).disconnect()
        await done
        await reader.leave().catch(() => undefined)
        await closeClient(commands)
      })
  ).pipe(Effect.asVoid))
