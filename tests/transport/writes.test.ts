/** Coalesced writes are per gateway: two `Writes` (two gateways in one process) share no queue, count or pacing. */
import { describe, expect, it } from "bun:test"
import { DRAIN_BYTES_PER_CHECK, FLUSH_SLICE, joinChunks, type Outbox, Writes } from "../../src/transport/outbox.ts"

const outbox = () => {
  const box: Outbox & { flushes: number } = { queued: false, flushes: 0, flush: () => void box.flushes++, failed: () => {} }
  return box
}

describe("Writes", () => {
  it("closes a connection whose write throws and goes on with the others, this round and later ones", async () => {
    const errors: Array<unknown> = []
    const writes = new Writes((error) => void errors.push(error))
    const failed: Array<string> = []
    const broken: Outbox = {
      queued: false,
      flush: () => {
        throw new Error("the stream is closed")
      },
      failed: () => void failed.push("broken")
    }
    const before = outbox()
    const after = outbox()
    writes.schedule(before)
    writes.schedule(broken)
    writes.schedule(after)
    await new Promise<void>((resolve) => queueMicrotask(resolve))
    expect([before.flushes, after.flushes, failed, errors.map(String)]).toEqual([1, 1, ["broken"], ["Error: the stream is closed"]])
    // The next round is scheduled as usual.
    writes.schedule(after)
    await new Promise<void>((resolve) => queueMicrotask(resolve))
    expect(after.flushes).toBe(2)
  })

  it("flushes a connection queued many times in one turn once, on its own gateway's queue", async () => {
    const first = new Writes()
    const second = new Writes()
    const a = outbox()
    const b = outbox()
    for (let i = 0; i < 3; i++) first.schedule(a)
    second.schedule(b)
    expect(a.queued && b.queued).toBe(true)
    await new Promise<void>((resolve) => queueMicrotask(resolve))
    await new Promise<void>((resolve) => setTimeout(resolve, 0))
    expect([a.flushes, b.flushes]).toEqual([1, 1])
    expect(a.queued || b.queued).toBe(false)
  })

  it("flushes at most FLUSH_SLICE connections per turn, the rest after I/O had its turn, each once and in queue order", async () => {
    const writes = new Writes()
    const order: Array<number> = []
    const boxes = Array.from({ length: 2 * FLUSH_SLICE + 10 }, (_, i) => {
      const box: Outbox = { queued: false, flush: () => void order.push(i), failed: () => {} }
      return box
    })
    for (const box of boxes) writes.schedule(box)
    await new Promise<void>((resolve) => queueMicrotask(resolve))
    expect(order.length).toBe(FLUSH_SLICE)
    // Frames queued meanwhile on a connection still waiting join its pending write; none is flushed twice.
    writes.schedule(boxes[boxes.length - 1])
    // One already flushed and queued again goes to the back of the queue.
    writes.schedule(boxes[0])
    while (order.length < boxes.length + 1) await new Promise<void>((resolve) => setImmediate(resolve))
    expect(order).toEqual([...boxes.keys(), 0])
    expect(boxes.some((box) => box.queued)).toBe(false)
  })

  it("counts delivered events per gateway and per transport, handing them over once", () => {
    const first = new Writes()
    const second = new Writes()
    first.countDelivered("sse", 3)
    first.countDelivered("ws", 2)
    second.countDelivered("sse", 7)
    expect(first.takeDelivered()).toEqual({ sse: 3, ws: 2 })
    expect(first.takeDelivered()).toEqual({ sse: 0, ws: 0 })
    expect(second.takeDelivered()).toEqual({ sse: 7, ws: 0 })
  })

  it("joins the same frames for connections flushed one after another once, and other frames anew", () => {
    const writes = new Writes()
    const frames = [1, 2, 3].map((n) => new Uint8Array([n, n]))
    const first = writes.join([...frames])
    expect(Array.from(first)).toEqual([1, 1, 2, 2, 3, 3])
    // The next connection's queue: another array holding the same frames — the same buffer, not a copy.
    expect(writes.join([...frames])).toBe(first)
    const other = writes.join([frames[0], frames[2]])
    expect(Array.from(other)).toEqual([1, 1, 3, 3])
    expect(writes.join([frames[0], frames[2]])).toBe(other)
    // Equal bytes in other frames are joined anew (frames are compared by identity, never by content).
    expect(writes.join([frames[0], new Uint8Array([3, 3])])).not.toBe(other)
    expect(writes.join([frames[1]])).toBe(frames[1])
    expect(Array.from(joinChunks(frames))).toEqual(Array.from(first))
  })

  it("readies waiters for a bounded number of bytes per check, those their own link held back first", async () => {
    const writes = new Writes()
    const mark = DRAIN_BYTES_PER_CHECK / 4
    const order: Array<string> = []
    // A slow link: its queue is full at the first check, drained at the next.
    let slowChecks = 0
    writes.whenDrained(() => (slowChecks++ === 0 ? mark : 0), mark, () => void order.push("slow"))
    for (let i = 0; i < 10; i++) writes.whenDrained(() => 0, mark, () => void order.push(`w${i}`))
    while (order.length < 11) await new Promise<void>((resolve) => setTimeout(resolve, 1))
    expect(order).toEqual(["w0", "w1", "w2", "w3", "slow", "w4", "w5", "w6", "w7", "w8", "w9"])
  })

  it("calls a pacing waiter once its queue is under the mark, and stop() drops the waiters", async () => {
    const writes = new Writes()
    let queued = 10
    let ready = 0
    writes.whenDrained(() => queued, 5, () => void ready++)
    await new Promise<void>((resolve) => setTimeout(resolve, 20))
    expect(ready).toBe(0)
    queued = 1
    while (ready === 0) await new Promise<void>((resolve) => setTimeout(resolve, 5))
    expect(ready).toBe(1)
    const other = new Writes()
    let never = 0
    other.whenDrained(() => 0, 5, () => void never++)
    other.stop()
    // A sentinel waiter on a live queue: once it fired, the stopped queue had its chance too.
    let sentinel = false
    writes.whenDrained(() => 0, 5, () => void (sentinel = true))
    while (!sentinel) await new Promise<void>((resolve) => setTimeout(resolve, 5))
    await new Promise<void>((resolve) => setTimeout(resolve, 10))
    expect(never).toBe(0)
  })
})
