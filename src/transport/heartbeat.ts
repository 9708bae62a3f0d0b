/**
 * Heartbeats for quiet connections (SPEC §4.1): one timer for all of them,
 * not one per connection, so ten thousand idle streams cost one tick.
 */
import { roundTime } from "./outbox.ts"

export interface Beating {
  readonly lastWrite: number
  heartbeat(): void
}

export class Heartbeats {
  private readonly connections = new Set<Beating>()
  private readonly timer: ReturnType<typeof setInterval>

  constructor(private readonly intervalMs: number) {
    // Ticking at a quarter of the interval keeps each silence within 125% of it.
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.floor(intervalMs / 4)))
  }

  add(connection: Beating): void {
    this.connections.add(connection)
  }

  remove(connection: Beating): void {
    this.connections.delete(connection)
  }

  get size(): number {
    return this.connections.size
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private tick(): void {
    const now = Math.max(Date.now(), roundTime)
    for (const connection of this.connections) {
      if (now - connection.lastWrite >= this.intervalMs) connection.heartbeat()
    }
  }
}
