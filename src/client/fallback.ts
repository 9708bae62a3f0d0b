/**
 * Which transport to try next, and when (SPEC §12) — pure, so every rule is
 * unit-tested without a network:
 * - a transport that could not be established, or stayed silent past the
 *   probe time although open (a buffering proxy), hands over to the next one
 *   at once; after the last one, the first is tried again with backoff;
 * - a link that was open and dropped is reopened on the same transport;
 * - an expired token reconnects at once (with a fresh token);
 * - a refused token is retried with backoff only when a token function can
 *   give a new one, otherwise the connection gives up;
 * - established on a fallback transport, the preferred one is tried again
 *   later, less often each time it fails.
 */
import type { LinkEnd, TransportName } from "./link.ts"

export interface Plan {
  readonly transports: ReadonlyArray<TransportName>
  /** The transport in use or being tried. */
  readonly index: number
  /** Failed attempts since the last established link (drives the backoff). */
  readonly failures: number
  /** Failed returns to the preferred transport since it last worked. */
  readonly preferredFailures: number
}

/** How a link ended, as the plan sees it: `silent` = open but nothing arrived within the probe time. */
export type Outcome = LinkEnd | "silent"

export interface Timing {
  /** First backoff step (ms); doubles per failure. */
  readonly retryMs: number
  readonly maxRetryMs: number
  /** First wait before trying the preferred transport again (ms); doubles per failed try. */
  readonly retryPreferredMs: number
}

export type Decision =
  | { readonly action: "connect"; readonly plan: Plan; readonly delayMs: number; readonly fallback: boolean }
  | { readonly action: "give_up" }

export const firstPlan = (transports: ReadonlyArray<TransportName>): Plan => {
  if (transports.length === 0) throw new Error("taskstream client: transports must name at least one transport")
  return { transports, index: 0, failures: 0, preferredFailures: 0 }
}

export const transportOf = (plan: Plan): TransportName => plan.transports[plan.index]

const backoffMs = (failures: number, timing: Timing): number =>
  failures === 0 ? 0 : Math.min(timing.maxRetryMs, timing.retryMs * 2 ** Math.min(failures - 1, 16))

/** What to do after the link on `plan`'s transport ended with `outcome`. */
export const afterEnd = (plan: Plan, outcome: Outcome, timing: Timing, tokenRenewable: boolean): Decision => {
  switch (outcome) {
    case "failed":
    case "silent": {
      if (plan.index + 1 < plan.transports.length) {
        return { action: "connect", plan: { ...plan, index: plan.index + 1 }, delayMs: 0, fallback: true }
      }
      const failures = plan.failures + 1
      return { action: "connect", plan: { ...plan, index: 0, failures }, delayMs: backoffMs(failures, timing), fallback: false }
    }
    case "dropped": {
      const failures = plan.failures + 1
      return { action: "connect", plan: { ...plan, failures }, delayMs: backoffMs(failures, timing), fallback: plan.index > 0 }
    }
    case "token_expired":
      return { action: "connect", plan, delayMs: 0, fallback: plan.index > 0 }
    case "unauthorized": {
      if (!tokenRenewable) return { action: "give_up" }
      const failures = plan.failures + 1
      return { action: "connect", plan: { ...plan, failures }, delayMs: backoffMs(failures, timing), fallback: plan.index > 0 }
    }
  }
}

/** A link got through: the backoff starts over; on a fallback transport, when to try the preferred one again. */
export const afterEstablished = (plan: Plan, timing: Timing): { readonly plan: Plan; readonly retryPreferredInMs: number | undefined } => ({
  plan: { ...plan, failures: 0, preferredFailures: plan.index === 0 ? 0 : plan.preferredFailures },
  retryPreferredInMs: plan.index === 0 ? undefined : Math.min(10 * 60_000, timing.retryPreferredMs * 2 ** Math.min(plan.preferredFailures, 16))
})

/** The preferred transport got through again: use it. */
export const preferredWorks = (plan: Plan): Plan => ({ ...plan, index: 0, failures: 0, preferredFailures: 0 })

/** The try of the preferred transport failed: stay, and wait longer before the next try. */
export const preferredFailed = (plan: Plan): Plan => ({ ...plan, preferredFailures: plan.preferredFailures + 1 })
