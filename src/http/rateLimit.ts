/**
 * A per-subject rate — `PUBLISH_RATE` (events ingested per second) and
 * `COMMAND_RATE` (control commands per second) — as a token bucket holding one
 * second's worth. Buckets of subjects that went quiet are dropped.
 */
interface Bucket {
  tokens: number
  at: number
}

export class RateLimit {
  private readonly buckets = new Map<string, Bucket>()
  private lastSweep = Date.now()

  constructor(private readonly perSecond: number) {}

  /** Take `events` tokens; returns 0 when allowed, else the seconds to wait. */
  take(subject: string, events: number, now = Date.now()): number {
    if (this.perSecond === 0) return 0
    if (now - this.lastSweep > 60_000) this.sweep(now)
    const bucket = this.buckets.get(subject) ?? { tokens: this.perSecond, at: now }
    bucket.tokens = Math.min(this.perSecond, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond)
    bucket.at = now
    this.buckets.set(subject, bucket)
    if (bucket.tokens >= events) {
      bucket.tokens -= events
      return 0
    }
    return Math.max(1, Math.ceil((Math.min(events, this.perSecond) - bucket.tokens) / this.perSecond))
  }

  private sweep(now: number): void {
    this.lastSweep = now
    for (const [subject, bucket] of this.buckets) if (now - bucket.at > 60_000) this.buckets.delete(subject)
  }
}
