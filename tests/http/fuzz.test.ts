/**
 * Property-based tests of every input surface (issue 16), with fast-check,
 * through `app.request()` on the memory log: ingest bodies (single and batch),
 * query strings, path ids, `Last-Event-ID`, tokens and WebSocket frames. For
 * any input: never a 5xx, never a throw, an error always carries a stable code
 * and names its field, and a rejected request stores nothing. And the WebSocket
 * state machine against a real gateway: subscribe / pause / resume /
 * unsubscribe in any order while publishing delivers each subscription exactly
 * the published sequence.
 *
 * Fixed seed (FUZZ_SEED, default 16) so CI is repeatable; FUZZ_RUNS (default 60)
 * per property for longer runs: `FUZZ_RUNS=5000 bun test tests/http/fuzz.test.ts`.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Redacted } from "effect"
import fc from "fast-check"
import { ErrorCodes } from "../../src/http/errors.ts"
import { decodeClientFrame } from "../../src/http/wsProtocol.ts"
import { EventTypes } from "../../src/events/registry.ts"
import { taskPath } from "../support/api.ts"
import { type InProcessApp, startApp } from "../support/app.ts"
import { useHarness } from "../support/harness.ts"
import { hsToken, SECRET } from "../support/tokens.ts"
import { openWs } from "../support/ws.ts"

const RUNS = Number(process.env.FUZZ_RUNS ?? 60)
const SEED = Number(process.env.FUZZ_SEED ?? 16)
const settings = { numRuns: RUNS, seed: SEED }
/** A property over many requests: its time grows with FUZZ_RUNS. */
const TIMEOUT_MS = Math.max(20_000, RUNS * 200)

interface Answer {
  readonly status: number
  readonly body: any
}

const answer = async (response: Response): Promise<Answer> => {
  const type = response.headers.get("content-type") ?? ""
  if (type.startsWith("text/event-stream")) {
    await response.body?.cancel()
    return { status: response.status, body: undefined }
  }
  const text = await response.text()
  return { status: response.status, body: type.includes("json") && text !== "" ? JSON.parse(text) : text }
}

/** Never 5xx; a 4xx is `{code, message, field?}` with a known code; `fields` lists where it may point. */
const expectWellFormed = (got: Answer, fieldRequired: boolean) => {
  expect(got.status).toBeLessThan(500)
  if (got.status < 400) return
  expect(Object.keys(ErrorCodes)).toContain(got.body.code)
  expect(typeof got.body.message).toBe("string")
  if (fieldRequired) expect(typeof got.body.field).toBe("string")
}

const AGENT = "fuzz-agent"
const TASK = "fuzz-task"

/** A draft that is often nearly right: a real type, fields of the right names with values of any kind. */
const draft = fc.record(
  {
    type: fc.oneof(fc.constantFrom(...EventTypes), fc.string()),
    data: fc.oneof(
      fc.dictionary(fc.constantFrom("model", "step", "chunk", "chunk_index", "tool_name", "tool_call_id", "success", "cost", "limit", "error", "goal", "call_id"), fc.jsonValue({ maxDepth: 3, stringUnit: "binary" })),
      fc.jsonValue({ maxDepth: 4 })
    ),
    time: fc.oneof(fc.string(), fc.date({ noInvalidDate: true }).map((date) => date.toISOString()), fc.constant("9999-99-99T99:99:99Z")),
    idempotency_key: fc.string({ maxLength: 300 }),
    extra: fc.jsonValue({ maxDepth: 2 })
  },
  { requiredKeys: ["type"] }
)

const body = fc.oneof(
  draft.map((value) => JSON.stringify(value)),
  fc.array(draft, { maxLength: 5 }).map((value) => JSON.stringify(value)),
  fc.jsonValue({ maxDepth: 6 }).map((value) => JSON.stringify(value)),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.integer({ min: 1, max: 3000 }).map((depth) => `{"type":"WorkflowStarted","data":{"goal":${"[".repeat(depth)}${"]".repeat(depth)}}}`)
)

const contentType = fc.oneof(
  { weight: 5, arbitrary: fc.constant("application/json") },
  fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8", "application/cloudevents+json", ""),
  fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz/+;= -.".split("")), maxLength: 40 })
)

const storedCount = async (app: InProcessApp, agentId: string, taskId: string) =>
  (await (await app.request(`${taskPath(agentId, taskId)}/events?limit=1000`)).json()).events.length as number

describe("Fuzzed input [memory log, app.request]", () => {
  let app: InProcessApp
  beforeAll(async () => {
    app = await startApp({ maxBatchEvents: 4, maxEventBytes: 4096, maxBodyBytes: 64 * 1024 })
    const seeded = await app.request(`${taskPath(AGENT, TASK)}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "WorkflowStarted", data: { goal: "fuzz" } })
    })
    expect(seeded.status).toBe(201)
  })
  afterAll(() => app.close())

  it("ingest bodies: never 5xx, errors name their field, a rejection stores nothing", async () => {
    let task = 0
    await fc.assert(
      fc.asyncProperty(body, contentType, async (text, type) => {
        const taskId = `ingest-${task++}`
        // Each case on its own task with one stored event, so "nothing stored" is exact.
        await app.request(`${taskPath(AGENT, taskId)}/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ type: "WorkflowStepStarted", data: { step: 0 } })
        })
        const got = await answer(
          await app.request(`${taskPath(AGENT, taskId)}/events`, {
            method: "POST",
            headers: type === "" ? {} : { "content-type": type },
            body: text
          })
        )
        expectWellFormed(got, true)
        if (got.status !== 201) expect(await storedCount(app, AGENT, taskId)).toBe(1)
      }),
      settings
    )
  }, TIMEOUT_MS)

  it("query strings on history and stream: never 5xx, errors name the parameter", async () => {
    const value = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("true", "false", "0", "1", "llm", "WorkflowStarted", "envelope", "1-0", "0-0", "99999999999999999999-1", "-1"))
    const query = fc.dictionary(fc.constantFrom("types", "format", "include_history", "last_event_id", "after", "limit", "access_token", "replay", "x"), value, { maxKeys: 4 })
    await fc.assert(
      fc.asyncProperty(query, fc.constantFrom("/events", "/events/stream"), async (params, route) => {
        const search = new URLSearchParams(params).toString()
        const got = await answer(await app.request(`${taskPath(AGENT, TASK)}${route}?${search}`))
        expectWellFormed(got, true)
      }),
      settings
    )
  }, TIMEOUT_MS)

  it("path ids: never 5xx; a bad id is 400 naming agentId or taskId, or no route at all", async () => {
    const id = fc.oneof(fc.string({ maxLength: 140 }), fc.string({ unit: fc.constantFrom(..."aZ09._:-".split("")), minLength: 1, maxLength: 130 }))
    await fc.assert(
      fc.asyncProperty(id, id, fc.constantFrom("/events", "/events/stream", "/cancel"), async (agentId, taskId, route) => {
        const path = `/api/v1/agents/${encodeURIComponent(agentId)}/tasks/${encodeURIComponent(taskId)}${route}`
        const got = await answer(await app.request(path, route === "/cancel" ? { method: "POST" } : {}))
        expectWellFormed(got, false)
        if (got.status === 400) expect(["agentId", "taskId"]).toContain(got.body.field)
      }),
      settings
    )
  }, TIMEOUT_MS)

  it("Last-Event-ID: never 5xx; a bad one is 400 naming the header", async () => {
    const header = fc.oneof(
      fc.string({ unit: fc.constantFrom(..."0123456789-abcXYZ ".split("")), maxLength: 40 }),
      fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 70n }), fc.bigInt({ min: 0n, max: 2n ** 70n })).map(([ms, seq]) => `${ms}-${seq}`)
    )
    await fc.assert(
      fc.asyncProperty(header, async (lastEventId) => {
        const got = await answer(await app.request(`${taskPath(AGENT, TASK)}/events/stream`, { headers: { "last-event-id": lastEventId } }))
        expectWellFormed(got, true)
        if (got.status === 400) expect(got.body.field).toBe("Last-Event-ID")
      }),
      settings
    )
  }, TIMEOUT_MS)

  it("WebSocket frames in any form: decoded or refused with a code, never a throw", () => {
    const op = fc.constantFrom("subscribe", "unsubscribe", "pause", "resume", "command", "ping", "auth", "nope")
    const frame = fc.oneof(
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.jsonValue({ maxDepth: 5 }).map((value) => JSON.stringify(value)),
      fc.record({ op, sub: fc.jsonValue({ maxDepth: 1 }), agentId: fc.string(), taskId: fc.string(), since: fc.string(), types: fc.jsonValue({ maxDepth: 2 }), command: fc.string(), ref: fc.string(), token: fc.string() }, { requiredKeys: ["op"] })
        .map((value) => JSON.stringify(value)),
      fc.integer({ min: 1, max: 20_000 }).map((depth) => `{"op":"ping","x":${"[".repeat(depth)}${"]".repeat(depth)}}`)
    )
    fc.assert(
      fc.property(frame, (text) => {
        const decoded = decodeClientFrame(text)
        if (decoded._tag === "Failure") {
          expect(Object.keys(ErrorCodes)).toContain(decoded.failure.code)
          expect(typeof decoded.failure.message).toBe("string")
        }
      }),
      { ...settings, numRuns: RUNS * 10 }
    )
  })
})

describe("Fuzzed tokens [memory log, app.request]", () => {
  let app: InProcessApp
  beforeAll(async () => {
    app = await startApp({ authJwtSecret: Redacted.make(SECRET) })
  })
  afterAll(() => app.close())

  const base64url = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url")

  it("any bearer token: 401 naming the token, or 200/403 for a genuine one; never 5xx", async () => {
    const forged = fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 4 }), fc.string({ maxLength: 40 }))
      .map(([header, payload, signature]) => `${base64url(header)}.${base64url(payload)}.${base64url(signature)}`)
    const genuine = fc.record({
      scopes: fc.array(fc.oneof(fc.constantFrom("*/*", `${AGENT}/*`, "*/x", "*-*-*/*"), fc.string({ maxLength: 30 })), { maxLength: 4 }),
      claims: fc.dictionary(fc.constantFrom("sub", "exp", "nbf", "iat"), fc.oneof(fc.integer(), fc.string(), fc.constant(null)), { maxKeys: 3 })
    }).chain(({ claims, scopes }) => fc.constant(hsToken({ subscribe: scopes }, claims)))
    const token = fc.oneof(
      fc.string({ unit: fc.constantFrom(..."abcXYZ019-_.".split("")), maxLength: 200 }),
      forged.map((text) => Promise.resolve(text)),
      genuine
    ).map((value) => (typeof value === "string" ? Promise.resolve(value) : value))
    await fc.assert(
      fc.asyncProperty(token, async (pending) => {
        const bearer = await pending
        const got = await answer(await app.request(`${taskPath(AGENT, TASK)}/events`, { headers: { authorization: `Bearer ${bearer}` } }))
        expectWellFormed(got, false)
        if (got.status === 401) expect(got.body.field).toBe("token")
      }),
      settings
    )
  }, TIMEOUT_MS)
})

type WsOp =
  | { readonly op: "subscribe" | "unsubscribe" | "pause" | "resume"; readonly sub: number }
  | { readonly op: "publish"; readonly count: number }

describe("WebSocket subscriptions in random orders while publishing [bun, memory log]", () => {
  const h = useHarness("memory")

  it("each subscription delivers exactly the published sequence: all of it while open, a gap-free prefix once closed", async () => {
    const op: fc.Arbitrary<WsOp> = fc.oneof(
      fc.record({ op: fc.constantFrom("subscribe", "unsubscribe", "pause", "resume"), sub: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ op: fc.constant("publish"), count: fc.integer({ min: 1, max: 5 }) })
    )
    let run = 0
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const task = `ws-fuzz-${run++}-${Date.now()}`
        const ws = await openWs(h().url)
        const published: Array<string> = []
        const publish = async (data: Array<unknown>) => {
          const response = await fetch(`${h().url}${taskPath(AGENT, task)}/events`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(data)
          })
          published.push(...((await response.json()).ids as Array<string>))
        }
        const open = new Set<number>()
        const paused = new Set<number>()
        try {
          for (const step of ops) {
            if (step.op === "publish") {
              await publish(Array.from({ length: step.count }, (_, i) => ({ type: "WorkflowStepStarted", data: { step: i } })))
              continue
            }
            const sub = `s${step.sub}`
            ws.send({ op: step.op, sub, ...(step.op === "subscribe" ? { agentId: AGENT, taskId: task } : {}) })
            if (step.op === "subscribe" && !open.has(step.sub)) open.add(step.sub)
            if (step.op === "unsubscribe") {
              open.delete(step.sub)
              paused.delete(step.sub)
            }
            if (step.op === "pause" && open.has(step.sub)) paused.add(step.sub)
            if (step.op === "resume") paused.delete(step.sub)
          }
          for (const sub of paused) ws.send({ op: "resume", sub: `s${sub}` })
          await publish([{ type: "WorkflowCompleted", data: {} }])
          await ws.waitFor((frames) => [...open].every((sub) => frames.some((frame) => frame.op === "end" && frame.sub === `s${sub}`)), 10_000, "every open subscription to end")
          // Each subscription's life: the frames between its `subscribed` and its `unsubscribed`/`end`.
          const lives = new Map<string, Array<Array<string>>>()
          for (const frame of ws.frames) {
            if (frame.op === "subscribed") lives.set(frame.sub, [...(lives.get(frame.sub) ?? []), []])
            if (frame.op === "event") lives.get(frame.sub)!.at(-1)!.push(frame.event.id)
          }
          for (const [sub, runs] of lives) {
            runs.forEach((ids, i) => {
              const stillOpen = i === runs.length - 1 && open.has(Number(sub.slice(1)))
              if (stillOpen) expect({ sub, ids }).toEqual({ sub, ids: published })
              else expect({ sub, ids }).toEqual({ sub, ids: published.slice(0, ids.length) })
            })
          }
        } finally {
          ws.close()
        }
      }),
      { ...settings, numRuns: Math.max(5, Math.floor(RUNS / 4)) }
    )
  }, TIMEOUT_MS)
})
