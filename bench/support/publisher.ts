// Publishes bench events through the contract's atomic script (src/log/append.lua) with EVALSHA.
// Each event is a WorkflowStepStarted whose data carries the step number and the publish wall time:
// {"step":<n>,"t":<ms>,"pad":"xxx…"} padded to the scenario's payload size.
import Redis from "ioredis"
import { readFileSync } from "node:fs"
import { wallNow } from "./clock.ts"

export interface Task {
  readonly agentId: string
  readonly taskId: string
}

type AppendCommand = (...args: string[]) => Promise<string[]>
type Appender = Redis & { tsAppend: AppendCommand }
type AppendPipeline = ReturnType<Redis["pipeline"]> & { tsAppend: (...args: string[]) => unknown }

const PREFIX = process.env.REDIS_PREFIX ?? "ts"
const HISTORY_MAX = "10000"
const RETENTION_S = "86400"
const IDEMPOTENCY_S = "86400"
const INFLIGHT_TTL_S = "3600"

export const stepData = (step: number, payloadBytes: number): string => {
  const head = `{"step":${step},"t":${wallNow().toFixed(3)},"pad":"`
  return head + "x".repeat(Math.max(0, payloadBytes - head.length - 2)) + '"}'
}

const appendArgs = (task: Task, type: string, data: string): string[] => [
  `${PREFIX}:{${task.taskId}}:log`, `${PREFIX}:{${task.taskId}}:live`, `${PREFIX}:{${task.taskId}}:inflight`,
  task.agentId, HISTORY_MAX, RETENTION_S, IDEMPOTENCY_S, "PUBLISH", INFLIGHT_TTL_S, "1", type, data, "", "0",
]

export class Publisher {
  readonly redis: Appender
  errors = 0
  lastError = ""

  constructor(url: string, scriptPath: string) {
    this.redis = new Redis(url) as Appender
    this.redis.defineCommand("tsAppend", { numberOfKeys: 3, lua: readFileSync(scriptPath, "utf8") })
  }

  private noteError = (error: unknown): void => {
    this.errors++
    this.lastError = String(error)
  }

  step(task: Task, step: number, payloadBytes: number): Promise<unknown> {
    return this.redis.tsAppend(...appendArgs(task, "WorkflowStepStarted", stepData(step, payloadBytes))).catch(this.noteError)
  }

  complete(task: Task): Promise<unknown> {
    return this.redis.tsAppend(...appendArgs(task, "WorkflowCompleted", '{"final_response":"done"}')).catch(this.noteError)
  }

  /** `total` events round-robin over `tasks` at `rate` per second (task k % T gets step ⌊k/T⌋+1). */
  async atRate(tasks: Task[], rate: number, total: number, payloadBytes: number, maxMs: number): Promise<number> {
    const start = wallNow()
    const inFlight: Promise<unknown>[] = []
    let sent = 0
    for (let guard = 0; sent < total && guard < 10_000_000; guard++) {
      const elapsed = wallNow() - start
      if (elapsed > maxMs) break
      const due = Math.min(total, Math.floor((elapsed * rate) / 1000) + 1)
      for (; sent < due; sent++) {
        inFlight.push(this.step(tasks[sent % tasks.length]!, Math.floor(sent / tasks.length) + 1, payloadBytes))
      }
      await Bun.sleep(2)
    }
    await Promise.all(inFlight)
    return sent
  }

  /** `count` events to one task as fast as Redis takes them: pipelines of `batch`, `window` in flight. */
  async burst(task: Task, count: number, payloadBytes: number, batch = 200, window = 4): Promise<number> {
    let next = 1
    const worker = async (): Promise<void> => {
      for (let guard = 0; next <= count && guard < 1_000_000; guard++) {
        const pipeline = this.redis.pipeline() as AppendPipeline
        const end = Math.min(count, next + batch - 1)
        for (; next <= end; next++) {
          pipeline.tsAppend(...appendArgs(task, "WorkflowStepStarted", stepData(next, payloadBytes)))
        }
        const results = (await pipeline.exec()) ?? []
        for (const [error] of results) if (error) this.noteError(error)
      }
    }
    await Promise.all(Array.from({ length: window }, worker))
    return next - 1
  }

  async close(): Promise<void> {
    this.redis.disconnect()
  }
}
