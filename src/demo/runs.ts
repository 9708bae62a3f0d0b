/**
 * The demo agents running inside the gateway (POST /api/v1/demo), each on the
 * gateway's own log through one publisher on it (`makeLogPublisher`). Shutdown stops them all; a cap
 * keeps an open gateway from being made to run thousands of them.
 */
import type { LogLine } from "../observability/log.ts"
import type { TaskRef, WorkflowPublisher } from "../publisher/index.ts"
import { runDemoAgent } from "./agent.ts"

export const DEMO_AGENT_ID = "demo-agent"
/** Demo agents that may run at once in one gateway. */
export const MAX_DEMO_RUNS = 20

export const newDemoTask = (): TaskRef => ({
  agentId: DEMO_AGENT_ID,
  taskId: `demo-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`
})

export class DemoRuns {
  private readonly running = new Set<AbortController>()

  constructor(
    private readonly publisher: WorkflowPublisher,
    private readonly speed: number,
    private readonly logLine: LogLine
  ) {}

  get full(): boolean {
    return this.running.size >= MAX_DEMO_RUNS
  }

  /** Start a demo agent on `task` (a fresh one, see newDemoTask). */
  start(task: TaskRef): void {
    const stop = new AbortController()
    this.running.add(stop)
    runDemoAgent({ publisher: this.publisher, task, speed: this.speed, signal: stop.signal })
      .then(
        (outcome) => this.logLine("info", "demo agent finished", { ...task, outcome }),
        (error) => this.logLine("warn", "demo agent failed", { ...task, error: String(error) })
      )
      .finally(() => this.running.delete(stop))
  }

  stopAll(): void {
    for (const stop of this.running) stop.abort()
  }
}
