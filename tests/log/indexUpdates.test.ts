/**
 * The index updates of one window are coalesced per task: the coalesced list
 * leaves the index as the updates one by one would (task_index.lua's fold,
 * modelled here), whatever order and ids they come in; on Redis, the updates
 * of several turns wait for the window (or a flush) and go out together.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import fc from "fast-check"
import Redis from "ioredis"
import { builtinRegistry } from "../../src/events/registry.ts"
import { type AppendSettings, coalesceIndexUpdates, defineScripts, INDEX_RETRY_MS, type IndexUpdate, TaskIndexUpdates } from "../../src/log/appendScript.ts"
import { taskIndexKey, taskStatusKey } from "../../src/log/keys.ts"
import { startRedis, type RedisServer } from "../support/redis.ts"

type Recorded = { readonly ms: number; readonly seq: number; readonly status: string } | undefined

/** task_index.lua's status hash for one member. */
const applyScript = (recorded: Recorded, update: IndexUpdate): Recorded => {
  if (update.lastId === "") return recorded
  const [ms, seq] = update.lastId.split("-").map(Number)
  if (recorded !== undefined && (ms < recorded.ms || (ms === recorded.ms && seq <= recorded.seq))) return recorded
  const status = update.status !== "" ? update.status : recorded?.status === "paused" ? "paused" : "running"
  return { ms, seq, status }
}

const coalesced = (updates: ReadonlyArray<IndexUpdate>): Array<IndexUpdate> => {
  const out: Array<IndexUpdate> = []
  for (const update of updates) {
    const merged = out.length === 0 ? undefined : coalesceIndexUpdates(out[out.length - 1], update)
    if (merged === undefined) out.push(update)
    else out[out.length - 1] = merged
  }
  return out
}

const update = fc.record({
  member: fc.constant("agent/task"),
  at: fc.integer({ min: 0, max: 1000 }),
  lastId: fc.oneof(fc.constant(""), fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 2 })).map(([ms, seq]) => `${ms}-${seq}`)),
  status: fc.constantFrom("", "running", "paused", "completed", "failed", "cancelled")
})
const recorded: fc.Arbitrary<Recorded> = fc.option(
  fc.record({ ms: fc.integer({ min: 1, max: 4 }), seq: fc.integer({ min: 0, max: 2 }), status: fc.constantFrom("running", "paused", "completed") }),
  { nil: undefined }
)

describe("task index updates of one turn", () => {
  it("coalesced, leave the status hash as the updates one by one would", () => {
    fc.assert(
      fc.property(recorded, fc.array(update, { maxLength: 8 }), (start, updates) => {
        const oneByOne = updates.reduce(applyScript, start)
        const merged = coalesced(updates)
        expect(merged.reduce(applyScript, start)).toEqual(oneByOne)
        expect(merged.length).toBeLessThanOrEqual(Math.max(updates.length, 0))
      }),
      { numRuns: 2000 }
    )
  })

  it("keep the newest time for the index's order", () => {
    fc.assert(
      fc.property(fc.array(update, { minLength: 1, maxLength: 8 }), (updates) => {
        const merged = coalesced(updates)
        expect(Math.max(...merged.map((u) => u.at))).toBe(Math.max(...updates.map((u) => u.at)))
      })
    )
  })

  it("send one update for a run of plain appends to a task", () => {
    const plain = (n: number): IndexUpdate => ({ member: "a/t", at: n, lastId: `${n}-0`, status: "" })
    expect(coalesced([plain(1), plain(2), plain(3)])).toEqual([plain(3)])
    const paused = { ...plain(4), status: "paused" }
    expect(coalesced([plain(1), paused, plain(5)])).toEqual([paused, plain(5)])
  })
})

describe("task index updates on Redis", () => {
  let redis: RedisServer
  let client: Redis
  beforeAll(async () => {
    redis = await startRedis()
    client = new Redis(redis.url)
    defineScripts(client)
    // Load both scripts (their first call may be an EVAL after a NOSCRIPT).
    await (client as unknown as { taskstreamIndex: (...args: Array<unknown>) => Promise<number> }).taskstreamIndex(2, "warm", "{warm}:s", "m", 1, 10, "", "")
    await (client as unknown as { taskstreamIndexBatch: (...args: Array<unknown>) => Promise<number> }).taskstreamIndexBatch(2, "warm", "{warm}:s", "m", 1, 10, "", "")
  })
  afterAll(async () => {
    client.disconnect()
    await redis.stop()
  })
  const settings: AppendSettings = {
    registry: builtinRegistry,
    prefix: "iu",
    historyMax: 100,
    retentionSeconds: 0,
    idempotencySeconds: 60,
    inflightSeconds: 60,
    taskIndexMax: 100,
    taskIdleSeconds: 0
  }
  /** How many times Redis ran a script by EVALSHA so far. */
  const scriptCalls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redis.client.info("commandstats"))?.[1] ?? 0)
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

  it("wait for the window: the appends of several turns cost one index call, sent at once by flush()", async () => {
    // A window longer than the test: only flush() sends.
    const updates = new TaskIndexUpdates(client, settings, 60_000)
    const before = await scriptCalls()
    for (let n = 1; n <= 5; n++) {
      updates.add({ member: "a/t", at: n, lastId: `${n}-0`, status: "" })
      updates.add({ member: "a/u", at: n, lastId: `${n}-1`, status: n === 3 ? "paused" : "" })
      await nextTurn()
    }
    await client.ping()
    expect(await scriptCalls()).toBe(before)
    updates.flush()
    await client.ping()
    expect(await scriptCalls()).toBe(before + 1)
    expect(await client.zmscore(taskIndexKey("iu"), "a/t", "a/u")).toEqual(["5", "5"])
    expect(await client.hmget(taskStatusKey("iu"), "a/t", "a/u")).toEqual(["5-0 running", "5-1 paused"])
  })

  it("in one batch call leave the index as the script called once per update, in order", async () => {
    type Script = (...args: Array<string | number>) => Promise<number>
    const scripts = client as unknown as { taskstreamIndex: Script; taskstreamIndexBatch: Script }
    const state = async (prefix: string) => ({
      index: await client.zrange(taskIndexKey(prefix), "0", "-1", "WITHSCORES"),
      status: await client.hgetall(taskStatusKey(prefix))
    })
    let round = 0
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ member: fc.constantFrom("a/1", "a/2", "b/3", "b/4"), update }), { minLength: 1, maxLength: 12 }), async (drawn) => {
        round++
        // TASK_INDEX_MAX 3 of 4 members: the trimming runs too.
        const argsOf = ({ member, update: u }: (typeof drawn)[number]) => [member, u.at, 3, u.lastId, u.status]
        const keys = (prefix: string) => [2, taskIndexKey(prefix), taskStatusKey(prefix)] as const
        for (const item of drawn) await scripts.taskstreamIndex(...keys(`one${round}`), ...argsOf(item))
        await scripts.taskstreamIndexBatch(...keys(`batch${round}`), ...drawn.flatMap(argsOf))
        expect(await state(`batch${round}`)).toEqual(await state(`one${round}`))
      }),
      { numRuns: 150 }
    )
  })

  it("are sent by the timer when nothing flushes them", async () => {
    const updates = new TaskIndexUpdates(client, settings, 5)
    updates.add({ member: "a/timed", at: 7, lastId: "7-0", status: "" })
    updates.add({ member: "b/timed", at: 8, lastId: "8-0", status: "" })
    for (let i = 0; i < 200 && (await client.zscore(taskIndexKey("iu"), "b/timed")) === null; i++) await Bun.sleep(10)
    expect(await client.zmscore(taskIndexKey("iu"), "a/timed", "b/timed")).toEqual(["7", "8"])
  })

  it("that fail are sent again with the next ones, until INDEX_RETRY_MS after their append", async () => {
    // Not connected yet, and no offline queue (the gateway's fail-fast connection): the first call fails at once.
    const starting = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false })
    defineScripts(starting)
    try {
      const updates = new TaskIndexUpdates(starting, settings, 5)
      updates.add({ member: "a/retried", at: Date.now(), lastId: "9-0", status: "" })
      updates.add({ member: "a/too-old", at: Date.now() - INDEX_RETRY_MS - 1, lastId: "9-1", status: "" })
      // Refused at once ("Stream isn't writeable"), which starts the connection.
      updates.flush()
      await new Promise((resolve) => (starting.status === "ready" ? resolve(undefined) : starting.once("ready", resolve)))
      // The next update: it goes out with the one still young enough, before it.
      updates.add({ member: "a/next", at: Date.now(), lastId: "9-2", status: "" })
      for (let i = 0; i < 200 && (await client.zscore(taskIndexKey("iu"), "a/next")) === null; i++) await Bun.sleep(10)
      expect(await client.zscore(taskIndexKey("iu"), "a/next")).not.toBeNull()
      expect(await client.zscore(taskIndexKey("iu"), "a/retried")).not.toBeNull()
      expect(await client.zscore(taskIndexKey("iu"), "a/too-old")).toBeNull()
      updates.close()
    } finally {
      starting.disconnect()
    }
  })
})
