/**
 * Tokens that expire during a stream (SPEC §8.3), with the typed client in
 * Bun and in a real headless Chromium against a real gateway with JWT auth:
 * the token function is called again at each expiry and the stream goes on
 * from the last id — every event once, in order. Tokens here live 1–2 s.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { connectTaskSocket, followTask, type TaskEvent, type TransportName } from "../../src/client/index.ts"
import { step, taskPath } from "../support/api.ts"
import { type Browser, launchBrowser, screenshotOnFailure } from "../support/browser.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually, sleep } from "../support/ports.ts"
import { hsToken, SECRET } from "../support/tokens.ts"

const agent = "agent-t"
const COUNT = 40
const GAP_MS = 100

/** A token for agent-t that expires within 1–2 s. */
const shortToken = () => hsToken({ subscribe: [`${agent}/*`] }, { exp: Math.floor(Date.now() / 1000) + 2 })

const publishSequence = async (baseUrl: string, taskId: string) => {
  const authorization = `Bearer ${await hsToken({ publish: [`${agent}/*`] })}`
  const post = async (event: unknown) => {
    const response = await fetch(`${baseUrl}${taskPath(agent, taskId)}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization },
      body: JSON.stringify(event)
    })
    expect(response.status).toBe(201)
  }
  for (let i = 1; i <= COUNT; i++) {
    await post(step(i))
    await sleep(GAP_MS)
  }
  await post({ type: "WorkflowCompleted", data: {} })
}

const expectExactSequence = (events: ReadonlyArray<{ type: string; data: unknown; id?: string }>) => {
  expect(events.map((event) => (event.type === "WorkflowStepStarted" ? (event.data as { step: number }).step : event.type))).toEqual([
    ...Array.from({ length: COUNT }, (_, i) => i + 1),
    "WorkflowCompleted"
  ])
  expect(new Set(events.map((event) => event.id)).size).toBe(COUNT + 1)
}

describe("token expiry with the typed client in Bun", () => {
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await startGateway({ AUTH_JWT_SECRET: SECRET, DEMO: "0" })
  })
  afterAll(async () => {
    await gateway?.stop()
  })

  for (const transport of ["websocket", "sse"] as const satisfies ReadonlyArray<TransportName>) {
    it(`followTask over ${transport} asks the token function again at each expiry and loses nothing`, async () => {
      const taskId = uniqueTask(`expiry-${transport}`)
      const events: Array<TaskEvent> = []
      const ends: Array<string> = []
      const errors: Array<unknown> = []
      let tokens = 0
      const follow = followTask({
        baseUrl: gateway.url,
        agentId: agent,
        taskId,
        transports: [transport],
        shareAcrossTabs: false,
        token: () => {
          tokens++
          return shortToken()
        },
        onEvent: (event) => events.push(event),
        onEnd: (end) => ends.push(end),
        onError: (error) => errors.push(error)
      })
      try {
        await publishSequence(gateway.url, taskId)
        await eventually(() => ends.length === 1, 15_000, "the end")
        expectExactSequence(events)
        expect(errors).toEqual([])
        // 4 s of publishing with tokens that live 1–2 s: the stream outlived its first token.
        expect(tokens).toBeGreaterThanOrEqual(2)
      } finally {
        follow.close()
      }
    }, 30_000)
  }

  it("followTask reports a refused token that no function can renew once, as an error, and stops", async () => {
    const errors: Array<{ status: number; code: string; message: string }> = []
    const states: Array<string> = []
    const follow = followTask({
      baseUrl: gateway.url,
      agentId: agent,
      taskId: uniqueTask("refused"),
      shareAcrossTabs: false,
      token: await hsToken({ subscribe: [`${agent}/*`] }, { exp: Math.floor(Date.now() / 1000) - 60 }),
      onEvent: () => undefined,
      onError: (error) => errors.push(error),
      onState: (state) => states.push(state)
    })
    await eventually(() => errors.length > 0, 10_000, "the refusal")
    await sleep(500)
    expect(errors).toEqual([{ status: 401, code: "unauthorized", message: "the gateway refused the token" }])
    expect(follow.state).toBe("closed")
    // The gateway's answer to the auth frame says the token is refused: no fallback to SSE, no retry.
    expect(states).toEqual(["connecting", "closed"])
  }, 30_000)

  it("connectTaskSocket asks the token function again after a 4001 and resubscribes from the last id", async () => {
    const taskId = uniqueTask("expiry-socket")
    const events: Array<TaskEvent> = []
    const ends: Array<string> = []
    let tokens = 0
    const socket = connectTaskSocket({
      baseUrl: gateway.url,
      token: () => {
        tokens++
        return shortToken()
      }
    })
    try {
      socket.subscribe({ agentId: agent, taskId, onEvent: (event) => events.push(event), onEnd: (end) => ends.push(end) })
      await publishSequence(gateway.url, taskId)
      await eventually(() => ends.length === 1, 15_000, "the end")
      expectExactSequence(events)
      expect(tokens).toBeGreaterThanOrEqual(2)
    } finally {
      socket.close()
    }
  }, 30_000)
})

describe("token expiry with the typed client in a real browser", () => {
  let gateway: Gateway
  let browser: Browser
  let script: string
  beforeAll(async () => {
    const build = await Bun.build({ entrypoints: [`${import.meta.dir}/browserEntry.ts`], target: "browser" })
    if (!build.success) throw new AggregateError(build.logs)
    script = await build.outputs[0].text()
    ;[gateway, browser] = await Promise.all([startGateway({ AUTH_JWT_SECRET: SECRET, DEMO: "0" }), launchBrowser()])
  })
  afterAll(async () => {
    await browser?.close()
    await gateway?.stop()
  })

  const cases = [
    { client: "followTask", transport: "websocket" },
    { client: "followTask", transport: "sse" },
    { client: "watchTask", transport: "sse" }
  ] as const

  for (const { client, transport } of cases) {
    it(`${client} over ${transport} gets a fresh token from its function at each expiry and loses nothing`, async () => {
      const page = await browser.newPage()
      const taskId = uniqueTask(`browser-expiry-${transport}`)
      let tokens = 0
      await page.exposeFunction("mintToken", () => {
        tokens++
        return shortToken()
      })
      await page.goto(`${gateway.url}/healthz`)
      await page.addScriptTag({ content: script })
      try {
        await screenshotOnFailure(page, `token-expiry-${client}-${transport}`, async () => {
          await page.evaluate(([client, transport, taskId]) => {
            const w = window as any
            w.record = { events: [], ends: [], errors: [] }
            const options = {
              agentId: "agent-t",
              taskId,
              token: () => w.mintToken(),
              onEvent: (event: unknown) => w.record.events.push(event),
              onEnd: (end: string) => w.record.ends.push(end),
              onError: (error: unknown) => w.record.errors.push(error)
            }
            w.follow = client === "followTask"
              ? w.taskstream.followTask({ ...options, transports: [transport] })
              : w.taskstream.watchTask(options)
          }, [client, transport, taskId] as const)
          await publishSequence(gateway.url, taskId)
          await page.waitForFunction(() => (window as any).record.ends.length > 0, undefined, { timeout: 20_000 })
          const record = await page.evaluate(() => (window as any).record)
          expectExactSequence(record.events)
          expect(record.ends).toEqual(["completed"])
          expect(record.errors).toEqual([])
          expect(tokens).toBeGreaterThanOrEqual(2)
        })
      } finally {
        await page.close()
      }
    }, 45_000)
  }
})
