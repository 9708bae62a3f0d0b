/**
 * The demo agent: a simulated workflow that publishes a realistic run
 * (scenario.ts) through a real publisher and obeys its control stream — the
 * way a real workflow should (docs/control.md): on `pause` it stops at the
 * next event and says so with WorkflowPaused, on `resume` it goes on after
 * WorkflowResumed, on `cancel` it stops for good after WorkflowCancelled.
 * It is written against the publisher SDK only, so it runs the same inside
 * the gateway (makeLogPublisher) and as its own process (redisPublisher).
 */
import type { EventType, PayloadOf, ReceivedCommand, TaskRef, WorkflowPublisher } from "../publisher/index.ts"
import { BudgetLimit, BudgetWarningAt, Goal, type LlmAction, Pricing, Steps, TokenMs, type ToolAction } from "./scenario.ts"

export interface DemoOptions {
  readonly publisher: WorkflowPublisher
  readonly task: TaskRef
  /** 1 is real time; 4 runs four times faster. */
  readonly speed?: number
  /** Stops the agent without publishing anything more (gateway shutdown). */
  readonly signal?: AbortSignal
}

export type DemoOutcome = "completed" | "cancelled" | "stopped"

/** Thrown inside the agent to unwind it once it was cancelled or stopped. */
class Stopped extends Error {}

/** Pause, resume and cancel, shared by the agent's main line and its command loop. */
class Flow {
  paused = false
  cancelled = false
  /** The publish in progress, so a command's event lands after it, never before. */
  private inflight: Promise<unknown> = Promise.resolve()
  private readonly wakers = new Set<() => void>()

  constructor(private readonly options: DemoOptions) {
    options.signal?.addEventListener("abort", () => this.wake())
  }

  get stopped(): boolean {
    return this.cancelled || this.options.signal?.aborted === true
  }

  wake() {
    for (const wake of [...this.wakers]) wake()
  }

  private waitForWake(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.wakers.delete(done)
        resolve()
      }
      const timer = ms === undefined ? undefined : setTimeout(done, ms)
      this.wakers.add(done)
    })
  }

  /** Publish as the agent: waits while paused; throws Stopped once cancelled. */
  async emit<T extends EventType>(type: T, data: PayloadOf<T>): Promise<void> {
    for (;;) {
      if (this.stopped) throw new Stopped()
      if (!this.paused) break
      await this.waitForWake()
    }
    await this.publish(type, data)
  }

  /** Publish for a command, after whatever the agent is publishing now. */
  async publishAfterInflight<T extends EventType>(type: T, data: PayloadOf<T>): Promise<void> {
    await this.inflight
    if (!this.options.signal?.aborted) await this.publish(type, data)
  }

  private publish<T extends EventType>(type: T, data: PayloadOf<T>): Promise<unknown> {
    const published = this.options.publisher.publish(this.options.task, type, data)
    this.inflight = published.catch(() => undefined)
    return published
  }

  /** Wait `ms` of simulated work (divided by the speed); cut short when stopped. */
  async sleep(ms: number): Promise<void> {
    const until = Date.now() + ms / (this.options.speed ?? 1)
    while (!this.stopped && Date.now() < until) await this.waitForWake(until - Date.now())
    if (this.stopped) throw new Stopped()
  }
}

const round = (amount: number) => Math.round(amount * 1e6) / 1e6

const costOf = (action: LlmAction, completionTokens: number) =>
  round((action.promptTokens * Pricing[action.model].input + completionTokens * Pricing[action.model].output) / 1e6)

/** Split an answer into tokens as a model streams them: words with their trailing space. */
const tokens = (text: string): Array<string> => text.match(/\S+\s*/g) ?? []

/** Answer the task's commands until the agent ends (the caller stops the iterator). */
const obey = async (flow: Flow, commands: AsyncIterator<ReceivedCommand>) => {
  for (;;) {
    const next = await commands.next()
    if (next.done) return
    const command = next.value
    const reason = command.reason || null
    if (command.command === "pause" && !flow.paused && !flow.stopped) {
      flow.paused = true
      await flow.publishAfterInflight("WorkflowPaused", { reason })
    } else if (command.command === "resume" && flow.paused && !flow.stopped) {
      await flow.publishAfterInflight("WorkflowResumed", { reason })
      flow.paused = false
      flow.wake()
    } else if (command.command === "cancel" && !flow.stopped) {
      flow.cancelled = true
      flow.wake()
      await flow.publishAfterInflight("WorkflowCancelled", { reason }).catch(() => undefined)
      await command.ack()
      return
    }
  }
}

export const runDemoAgent = async (options: DemoOptions): Promise<DemoOutcome> => {
  const flow = new Flow(options)
  const commands = options.publisher.commands(options.task)[Symbol.asyncIterator]()
  const obeying = obey(flow, commands).catch(() => undefined)
  let totalCost = 0
  let llmCalls = 0
  let toolCalls = 0
  let warned = false

  const callLlm = async (action: LlmAction) => {
    llmCalls++
    const parts = tokens(action.text)
    const completionTokens = Math.ceil(action.text.length / 4)
    await flow.emit("WorkflowLLMCallStarted", {
      model: action.model,
      estimated_cost: costOf(action, completionTokens * 1.5),
      iteration: llmCalls,
      message_count: 1 + llmCalls * 2
    })
    await flow.sleep(action.thinkMs)
    for (const [index, chunk] of parts.entries()) {
      await flow.emit("WorkflowLLMCallChunk", { chunk, chunk_index: index, model: action.model, is_final: index === parts.length - 1 })
      await flow.sleep(TokenMs * (0.6 + ((index * 7) % 9) / 10))
    }
    const cost = costOf(action, completionTokens)
    totalCost = round(totalCost + cost)
    await flow.emit("WorkflowLLMCallCompleted", {
      model: action.model,
      cost,
      total_cost: totalCost,
      usage: { prompt_tokens: action.promptTokens, completion_tokens: completionTokens },
      content: action.text
    })
  }

  const callTool = async (action: ToolAction) => {
    const id = `call_${(++toolCalls).toString().padStart(3, "0")}`
    await flow.emit("WorkflowToolCallStarted", { tool_name: action.tool, tool_call_id: id, arguments: action.arguments })
    await flow.sleep(action.ms)
    await flow.emit("WorkflowToolCallCompleted", {
      tool_name: action.tool,
      tool_call_id: id,
      success: action.success,
      result: action.result,
      execution_time_ms: action.ms
    })
  }

  try {
    await flow.emit("WorkflowStarted", { goal: Goal, max_iterations: Steps.length, budget_limit: BudgetLimit })
    let answer = ""
    for (const [index, step] of Steps.entries()) {
      const started = Date.now()
      await flow.emit("WorkflowStepStarted", { step: index + 1, name: step.name })
      for (const action of step.actions) {
        await flow.sleep(300)
        if (action.kind === "llm") {
          await callLlm(action)
          answer = action.text
        } else {
          await callTool(action)
        }
      }
      await flow.emit("WorkflowStepCompleted", { step: index + 1, name: step.name, duration_ms: Date.now() - started })
      if (!warned && totalCost >= BudgetLimit * BudgetWarningAt) {
        warned = true
        await flow.emit("WorkflowBudgetWarning", {
          cost: totalCost,
          limit: BudgetLimit,
          usage_percentage: Math.round((totalCost / BudgetLimit) * 1000) / 10
        })
      }
    }
    await flow.sleep(400)
    await flow.emit("WorkflowCompleted", { final_response: answer, total_cost: totalCost, iterations_completed: Steps.length })
    return "completed"
  } catch (error) {
    if (!(error instanceof Stopped)) throw error
    return flow.cancelled ? "cancelled" : "stopped"
  } finally {
    // Stop reading commands; a cancel being answered finishes first.
    if (flow.cancelled) await obeying
    void commands.return?.()
  }
}
