/**
 * After a surge of connections (many opening or closing within seconds: a deploy, a reconnect
 * storm), once they have been quiet for a moment, ask the runtime to give back the memory the
 * surge's work left.
 *
 * Why: each opening reads the log, subscribes and builds a response; its garbage is collected,
 * but JavaScriptCore (Bun) keeps the heap's pages at the surge's peak and returns them over
 * about 10 s, part of them never. 10 000 idle SSE connections cost 11.4 KB each two seconds
 * after they opened and 9.6 KB ten seconds later; 8.5 KB once their surge is reduced
 * (docs/performance.md, "Issue 17, part 6"). V8 (Deno) has such a reducer of its own; there the
 * runtime gives no hook and nothing runs.
 *
 * A reduction costs one pause for a full collection and, on Bun, the compiled code, which the next
 * events compile again; so only a surge counts (SURGE_CONNECTIONS changes within SURGE_WINDOW_MS:
 * a steady trickle of reconnections never adds up to one), and reductions are at least
 * MIN_INTERVAL_MS apart.
 */

/** Connections opened or closed within SURGE_WINDOW_MS that make a surge. */
export const SURGE_CONNECTIONS = 1000
export const SURGE_WINDOW_MS = 10_000
/** How long the connections stay unchanged before the surge counts as over. */
export const SURGE_QUIET_MS = 500
/** The least time between two reductions: surges closer than that are reduced together. */
export const MIN_INTERVAL_MS = 30_000

export interface ReducerTiming {
  readonly surge: number
  readonly windowMs: number
  readonly quietMs: number
  readonly minIntervalMs: number
}

const TIMING: ReducerTiming = {
  surge: SURGE_CONNECTIONS,
  windowMs: SURGE_WINDOW_MS,
  quietMs: SURGE_QUIET_MS,
  minIntervalMs: MIN_INTERVAL_MS
}

export class MemoryReducer {
  /** Changes counted since `since`, the first change of the window. */
  private changes = 0
  private since = 0
  private lastChange = 0
  /** When the last reduction ran (never: -Infinity). */
  private lastReduction = -Infinity
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private stopped = false

  constructor(
    /** The runtime's reduction (Bun: `Bun.shrink()`): a full collection, and the free pages back to the OS. */
    private readonly reduce: () => void,
    private readonly timing: ReducerTiming = TIMING
  ) {}

  /** A connection opened or closed. */
  changed(): void {
    if (this.stopped) return
    const now = Date.now()
    this.lastChange = now
    // Armed: the surge goes on, and the check waits for its end.
    if (this.timer !== undefined) return
    if (now - this.since > this.timing.windowMs) {
      this.since = now
      this.changes = 0
    }
    if (++this.changes >= this.timing.surge) this.wait(this.timing.quietMs)
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private wait(ms: number): void {
    this.timer = setTimeout(this.check, ms)
    // Never what keeps the process alive.
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  private readonly check = (): void => {
    const now = Date.now()
    const due = Math.max(this.lastChange + this.timing.quietMs, this.lastReduction + this.timing.minIntervalMs)
    if (now < due) return this.wait(due - now)
    this.timer = undefined
    this.changes = 0
    this.since = now
    this.lastReduction = now
    this.reduce()
  }
}
