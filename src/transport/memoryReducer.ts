/**
 * After a surge of connections (many opening or closing within seconds: a deploy, a reconnect
 * storm), once it is over, ask the runtime to give back the memory the surge's work left.
 *
 * Why: each opening reads the log, subscribes and builds a response; its garbage is collected,
 * but JavaScriptCore (Bun) keeps the heap's pages at the surge's peak and returns them over
 * about 10 s, part of them never. 10 000 idle SSE connections cost 11.4 KB each two seconds
 * after they opened and 9.6 KB ten seconds later; 8.5 KB once their surge is reduced
 * (docs/performance.md, "Issue 17, part 6"). V8 (Deno) has such a reducer of its own; there the
 * runtime gives no hook and nothing runs.
 *
 * A reduction costs one pause for a full collection and, on Bun, the compiled code, which the next
 * events compile again. So only a surge counts (SURGE_CONNECTIONS changes within the last
 * SURGE_WINDOW_MS: a steady trickle of reconnections never adds up to one), it is reduced once it
 * is over (at most QUIET_CHANGES changes in SURGE_QUIET_MS; or, under churn that never settles,
 * SURGE_WINDOW_MS after it), and reductions are at least MIN_INTERVAL_MS apart. Times are
 * monotonic (`performance.now()`): a wall clock stepped back must not stall it.
 */

/** Connections opened or closed within SURGE_WINDOW_MS that make a surge. */
export const SURGE_CONNECTIONS = 1000
export const SURGE_WINDOW_MS = 10_000
/** The surge is over once no more than QUIET_CHANGES changes come in SURGE_QUIET_MS. */
export const SURGE_QUIET_MS = 500
export const QUIET_CHANGES = 5
/** The least time between two reductions: surges closer than that are reduced together. */
export const MIN_INTERVAL_MS = 30_000

export interface ReducerTiming {
  readonly surge: number
  readonly windowMs: number
  readonly quietMs: number
  readonly quietChanges: number
  readonly minIntervalMs: number
}

const TIMING: ReducerTiming = {
  surge: SURGE_CONNECTIONS,
  windowMs: SURGE_WINDOW_MS,
  quietMs: SURGE_QUIET_MS,
  quietChanges: QUIET_CHANGES,
  minIntervalMs: MIN_INTERVAL_MS
}

/** The window is counted in this many slices: a surge across a slice's edge still counts whole. */
const SLICES = 10

export class MemoryReducer {
  /** Changes per slice of the window, and the slice (its number since the start) each count is of. */
  private readonly counts = new Array<number>(SLICES).fill(0)
  private readonly slices = new Array<number>(SLICES).fill(-1)
  private readonly sliceMs: number
  /** Armed (a surge came): when, and the changes since the last check. */
  private armedAt = 0
  private sinceCheck = 0
  /** When the last reduction ran (never: -Infinity). */
  private lastReduction = -Infinity
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private stopped = false

  constructor(
    /** The runtime's reduction (Bun: `Bun.shrink()`): a full collection, and the free pages back to the OS. */
    private readonly reduce: () => void,
    private readonly timing: ReducerTiming = TIMING
  ) {
    this.sliceMs = timing.windowMs / SLICES
  }

  /** A connection opened or closed. */
  changed(): void {
    if (this.stopped) return
    // Armed: the surge goes on, and the check waits for its end.
    if (this.timer !== undefined) {
      this.sinceCheck++
      return
    }
    const slice = Math.floor(performance.now() / this.sliceMs)
    const at = slice % SLICES
    if (this.slices[at] !== slice) {
      this.slices[at] = slice
      this.counts[at] = 0
    }
    this.counts[at]++
    let inWindow = 0
    for (let i = 0; i < SLICES; i++) if (slice - this.slices[i] < SLICES) inWindow += this.counts[i]
    if (inWindow < this.timing.surge) return
    this.armedAt = performance.now()
    this.sinceCheck = 0
    this.wait(this.timing.quietMs)
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
    const now = performance.now()
    const settling = this.sinceCheck > this.timing.quietChanges && now - this.armedAt < this.timing.windowMs
    this.sinceCheck = 0
    if (settling) return this.wait(this.timing.quietMs)
    const next = this.lastReduction + this.timing.minIntervalMs
    if (now < next) return this.wait(next - now)
    this.timer = undefined
    this.counts.fill(0)
    this.lastReduction = now
    this.reduce()
  }
}
