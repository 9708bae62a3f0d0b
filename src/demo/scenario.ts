/**
 * What the demo agent does: an incident investigation in four steps, with
 * LLM calls (streamed), tool calls (one of which times out and is retried)
 * and a budget that runs close to its limit. Plain data; `agent.ts` plays it.
 * Durations are at real speed; DEMO_SPEED divides them.
 */

export interface LlmAction {
  readonly kind: "llm"
  readonly model: keyof typeof Pricing
  readonly promptTokens: number
  /** The model's answer, streamed as chunks; its length sets the completion tokens. */
  readonly text: string
  readonly thinkMs: number
}

export interface ToolAction {
  readonly kind: "tool"
  readonly tool: string
  readonly arguments: Record<string, unknown>
  readonly ms: number
  readonly result: Record<string, unknown>
  readonly success: boolean
}

export interface Step {
  readonly name: string
  readonly actions: ReadonlyArray<LlmAction | ToolAction>
}

/** US$ per million tokens, input and output. */
export const Pricing = {
  "gpt-4o": { input: 2.5, output: 10 },
  "claude-sonnet-4": { input: 3, output: 15 },
  "gpt-4o-mini": { input: 0.15, output: 0.6 }
} as const

export const Goal = "Find out why checkout latency rose on Tuesday and propose a fix"
export const BudgetLimit = 0.055
/** A budget warning is published once the running cost passes this share of the limit. */
export const BudgetWarningAt = 0.8
/** Delay between two streamed tokens. */
export const TokenMs = 45

const llm = (model: LlmAction["model"], promptTokens: number, thinkMs: number, text: string): LlmAction => ({
  kind: "llm",
  model,
  promptTokens,
  thinkMs,
  text
})

const tool = (name: string, args: Record<string, unknown>, ms: number, result: Record<string, unknown>, success = true): ToolAction => ({
  kind: "tool",
  tool: name,
  arguments: args,
  ms,
  result,
  success
})

export const Steps: ReadonlyArray<Step> = [
  {
    name: "Plan the investigation",
    actions: [
      llm(
        "gpt-4o",
        1250,
        900,
        "Plan: 1) confirm the latency change and when it started in the checkout metrics; " +
          "2) list deploys around that time; 3) read the payment gateway logs for timeouts; " +
          "4) compare the configuration before and after the suspicious deploy."
      )
    ]
  },
  {
    name: "Gather evidence",
    actions: [
      tool("query_metrics", { service: "checkout", metric: "p95_latency_ms", range: "7d" }, 1400, {
        baseline_p95_ms: 420,
        tuesday_p95_ms: 1840,
        change_started: "2026-11-17T14:05:00Z"
      }),
      tool("search_deploys", { service: "checkout", since: "2026-11-17T00:00:00Z" }, 900, {
        deploys: [{ id: "d-4821", at: "2026-11-17T14:02:00Z", summary: "Payment client: one connection per request" }]
      }),
      tool("fetch_logs", { service: "payments-gateway", query: "timeout", limit: 500 }, 2500, {
        error: "log search timed out after 2500 ms"
      }, false),
      tool("fetch_logs", { service: "payments-gateway", query: "timeout", limit: 50 }, 1600, {
        matches: 37,
        sample: "ECONNRESET while acquiring socket: pool exhausted (max 16)"
      })
    ]
  },
  {
    name: "Analyse the cause",
    actions: [
      tool("diff_config", { before: "d-4820", after: "d-4821", path: "payments.http" }, 1100, {
        keepAlive: { before: true, after: false },
        maxSockets: { before: 64, after: 16 }
      }),
      llm(
        "claude-sonnet-4",
        14200,
        1400,
        "The p95 jump starts three minutes after deploy d-4821, which turned off HTTP keep-alive " +
          "in the payment client and cut its socket pool from 64 to 16. Every checkout now opens a new " +
          "TLS connection to the payment gateway, and under Tuesday's load the pool runs dry: the logs " +
          "show 37 'pool exhausted' resets. The latency is queueing for sockets, not slow payments."
      )
    ]
  },
  {
    name: "Write the recommendation",
    actions: [
      llm(
        "gpt-4o-mini",
        16000,
        700,
        "Recommendation: roll back the payment client settings of d-4821 (keep-alive on, maxSockets 64), " +
          "then add an alert on socket-pool wait time. Expected effect: p95 back near 420 ms."
      )
    ]
  }
]
