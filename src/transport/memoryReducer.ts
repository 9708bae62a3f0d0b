/**
 * After a surge of connections (many opening or closing: a deploy, a reconnect storm), once they
 * have been quiet for a moment, ask the runtime to give back the memory the surge's work left.
 *
 * Why: each opening reads the log, subscribes and builds a response; its garbage is collected,
 * but JavaScriptCore (Bun) keeps the heap's pages at the surge's peak and returns them over
 * about 10 s, part of them never. 10 000 idle SSE connections cost 11.4 KB each two seconds
 * after they opened, 9.6 KB ten seconds later, and 8.2–8.6 KB once their surge is reduced
 * (docs/performance.md, "Issue 17, part 6"). V8 (Deno) has such a reducer of its own; there the
 * runtime gives no hook and nothing runs.
 *
 * One reduction per surge: a steady trickle of connections never triggers it, and a reduction
 * costs one full collection (≈ 30 ms at 10 000 connections) and, on Bun, the compiled code,
 * which the next events compile again.
 */

/** Connections opened or closed since the last reduction that make a surge. */
export const SURGE_CONNECTIONS = 1000
/** How long the connections stay unchanged before the surge counts as over. */
export const SURGE_QUIET_MS = 500

export class MemoryReducer {
  private changes = 0
  private lastChange = 0
  private timer: ReturnType<typeof setTimeout> | undefined = undefined

  constructor(
    /** The runtime's reduction (Bun: `Bun.shrink()`): a full collection, and the free pages back to the OS. */
    private readonly reduce: () => void,
    private readonly surge = SURGE_CONNECTIONS,
    private readonly quietMs = SURGE_QUIET_MS
  ) {}

  /** A connection opened or closed. */
  changed(): void {
    this.lastChange = Date.now()
    if (++this.changes === this.surge) this.wait(this.quietMs)
  }

  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private wait(ms: number): void {
    this.timer = setTimeout(this.check, ms)
    // Never what keeps the process alive.
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  private readonly check = (): void => {
    const quiet = Date.now() - this.lastChange
    if (quiet < this.quietMs) return this.wait(this.quietMs - quiet)
    this.timer = undefined
    this.changes = 0
    this.reduce()
  }
}
