/**
 * `TASKS_PER_HOUR`: how many distinct tasks one subject may publish to per
 * hour on this instance. Tasks cost storage until they end or idle out
 * (TASK_IDLE_TTL_S); without this bound one token could create tasks as fast
 * as PUBLISH_RATE allows. Publishing again to a task already counted is free.
 * Memory: at most the limit's worth of task ids per active subject; subjects
 * whose hour is over are dropped.
 */
const HOUR_MS = 3_600_000

interface Window {
  readonly start: number
  readonly tasks: Set<string>
}

export class TaskQuota {
  private readonly windows = new Map<string, Window>()
  private lastSweep = Date.now()

  constructor(private readonly perHour: number) {}

  /** Count `task` for `subject`; returns 0 when allowed, else the seconds until the subject's hour ends. */
  take(subject: string, task: string, now = Date.now()): number {
    if (this.perHour === 0) return 0
    if (now - this.lastSweep > 60_000) this.sweep(now)
    let window = this.windows.get(subject)
    if (window === undefined || now - window.start >= HOUR_MS) {
      window = { start: now, tasks: new Set() }
      this.windows.set(subject, window)
    }
    if (window.tasks.has(task)) return 0
    if (window.tasks.size < this.perHour) {
      window.tasks.add(task)
      return 0
    }
    return Math.max(1, Math.ceil((window.start + HOUR_MS - now) / 1000))
  }

  private sweep(now: number): void {
    this.lastSweep = now
    for (const [subject, window] of this.windows) if (now - window.start >= HOUR_MS) this.windows.delete(subject)
  }
}
