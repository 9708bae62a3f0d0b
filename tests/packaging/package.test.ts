/**
 * The npm package as a user gets it (SPEC §10.4): `npm pack` (which builds
 * dist/ first), installed into a fresh project, then used with no Bun and no
 * TypeScript loader — plain Node 20 publishes to a real gateway over Redis and
 * over HTTP, follows the task with the client (the real `eventsource`
 * package), runs `npx taskstream-tail` to the end of a task; the same imports
 * under Deno; the client bundled by esbuild, running in Chromium; and a
 * TypeScript consumer type-checks against the shipped .d.ts.
 * One pack and one install, shared by every test.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { type Browser, launchBrowser, screenshotOnFailure } from "../support/browser.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"

const root = join(import.meta.dir, "..", "..")
const repoBin = (name: string) => join(root, "node_modules", ".bin", name)

/** PATH without any directory holding a `bun` executable: what runs here runs without Bun. */
const PATH_WITHOUT_BUN = (process.env.PATH ?? "").split(delimiter).filter((dir) => dir !== "" && !existsSync(join(dir, "bun"))).join(delimiter)

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Run a command to its end in `cwd`, with a plain environment (no Bun on PATH, no NODE_OPTIONS loader). */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeoutMs = 60_000): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { PATH: PATH_WITHOUT_BUN, HOME: process.env.HOME, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${command} ${args.join(" ")} timed out after ${timeoutMs} ms\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.once("error", reject)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

const succeeded = (result: Run, what: string): string => {
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`)
  return result.stdout
}

/**
 * One workflow's events published with the SDK over both transports, then
 * read back with the client; shared by the Node and the Deno program.
 * Prints one JSON line: the ids, the error code of a bad event, the types followed.
 */
const sdkProgram = (follow: "sse" | "websocket") => `
import { httpPublisher, PublishError, redisPublisher } from "taskstream/publisher"
import { connectTaskSocket, watchTask } from "taskstream/client"
${follow === "sse" ? `import { EventSource } from "eventsource"` : ""}

const [gatewayUrl, redisUrl, agentId, taskId] = ${follow === "sse" ? "process.argv.slice(2)" : "Deno.args"}
const task = { agentId, taskId }
const redis = redisPublisher({ redis: redisUrl })
const http = httpPublisher({ url: gatewayUrl })

const followed = []
const ended = new Promise((resolve, reject) => {
  const options = { agentId, taskId, onEvent: (event) => followed.push(event.type), onEnd: resolve, onError: reject }
  ${
  follow === "sse"
    ? `watchTask({ ...options, baseUrl: gatewayUrl, EventSource })`
    : `const socket = connectTaskSocket({ baseUrl: gatewayUrl })
  socket.subscribe({ ...options, onEnd: (end) => { socket.close(); resolve(end) } })`
}
})

const ids = [
  await redis.publish(task, "WorkflowStarted", { goal: "packaged" }),
  ...(await redis.publishBatch(task, [
    { type: "WorkflowLLMCallStarted", data: { model: "m" } },
    { type: "WorkflowLLMCallChunk", data: { chunk: "hi", chunk_index: 0 } }
  ])),
  await http.publish(task, "WorkflowStepStarted", { step: 1, name: "http" })
]
let invalid
try {
  await http.publish(task, "WorkflowLLMCallStarted", {})
} catch (error) {
  invalid = error instanceof PublishError ? error.code + " " + error.field : String(error)
}
ids.push(await http.publish(task, "WorkflowCompleted", { total_cost: 0.5 }))
const end = await ended
await redis.close()
await http.close()
console.log(JSON.stringify({ ids, invalid, followed, end }))
if (typeof process !== "undefined") process.exit(0)
`

/** The ids the program printed and what its client followed, checked the same way for Node and Deno. */
const expectWorkflow = (output: string) => {
  const result = JSON.parse(output.trim().split("\n").at(-1)!) as { ids: Array<string | null>; invalid: string; followed: Array<string>; end: string }
  expect(result.ids).toHaveLength(5)
  expect(result.ids[2]).toBeNull()
  for (const id of [...result.ids.slice(0, 2), ...result.ids.slice(3)]) expect(id).toMatch(/^\d+-\d+$/)
  expect(result.invalid).toBe("invalid_event data.model")
  expect(result.end).toBe("completed")
  const durable = ["WorkflowStarted", "WorkflowLLMCallStarted", "WorkflowStepStarted", "WorkflowCompleted"]
  expect(result.followed.filter((type) => type !== "WorkflowLLMCallChunk")).toEqual(durable)
}

describe("the npm package in a fresh project", () => {
  let work: string
  let project: string
  let redis: RedisServer
  let gateway: Gateway
  let browser: Browser | undefined

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "taskstream-package-"))
    project = join(work, "project")
    ;[redis] = await Promise.all([startRedis(), run("npm", ["pack", "--pack-destination", work], root, 120_000).then((r) => succeeded(r, "npm pack"))])
    gateway = await startGateway({ REDIS_URL: redis.url, DEMO: "0" })
    const tarball = readdirSync(work).find((name) => name.endsWith(".tgz"))!
    await Bun.write(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
    // The tarball's dependencies come from the registry (or npm's cache); eventsource is what Node 20 lacks.
    succeeded(
      await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", join(work, tarball), "eventsource@^4"], project, 180_000),
      "npm install"
    )
  }, 300_000)

  afterAll(async () => {
    await browser?.close()
    await gateway?.stop()
    await redis?.stop()
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  })

  it("ships only the compiled build: JavaScript, .d.ts, the append script, and a Node bin", () => {
    const installed = join(project, "node_modules", "taskstream")
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"))
    expect(manifest.exports["./publisher"]).toEqual({ types: "./dist/publisher/index.d.ts", import: "./dist/publisher/index.js" })
    expect(existsSync(join(installed, "src"))).toBe(false)
    // The publisher reads its Redis scripts next to its modules.
    for (const script of readdirSync(join(root, "src", "log")).filter((name) => name.endsWith(".lua"))) {
      expect(readFileSync(join(installed, "dist", "log", script), "utf8")).toBe(readFileSync(join(root, "src", "log", script), "utf8"))
    }
    expect(readFileSync(join(installed, "dist", "cli", "tail.js"), "utf8").split("\n")[0]).toBe("#!/usr/bin/env node")
  })

  it("publishes over Redis and HTTP and follows the task with watchTask under plain Node", async () => {
    writeFileSync(join(project, "workflow.mjs"), sdkProgram("sse"))
    const taskId = uniqueTask("node")
    const output = succeeded(await run("node", ["workflow.mjs", gateway.url, redis.url, "agent-pkg", taskId], project), "node workflow.mjs")
    expectWorkflow(output)
  }, 60_000)

  it("runs npx taskstream-tail under Node to the end of a task", async () => {
    const taskId = uniqueTask("npx")
    writeFileSync(join(project, "workflow.mjs"), sdkProgram("sse"))
    succeeded(await run("node", ["workflow.mjs", gateway.url, redis.url, "agent-pkg", taskId], project), "node workflow.mjs")
    const tail = await run("npx", ["--no-install", "taskstream-tail", "agent-pkg", taskId, "--url", gateway.url], project)
    const lines = succeeded(tail, "npx taskstream-tail").trimEnd().split("\n")
    expect(lines.map((line) => line.split(/\s+/)[2])).toEqual(["WorkflowStarted", "WorkflowLLMCallStarted", "WorkflowStepStarted", "WorkflowCompleted"])
    expect(lines[0]).toContain('goal="packaged"')
  }, 60_000)

  it("type-checks a TypeScript consumer against the shipped declarations", async () => {
    writeFileSync(
      join(project, "consumer.ts"),
      `import { redisPublisher, type PublishError } from "taskstream/publisher"
import { watchTask, type TaskEvent } from "taskstream/client"
const publisher = redisPublisher({ redis: "redis://127.0.0.1:1" })
export const started: Promise<string | null> = publisher.publish({ agentId: "a", taskId: "t" }, "WorkflowLLMCallStarted", { model: "m" })
export const code = (error: PublishError): string => error.code
export const model = (event: TaskEvent): string | undefined => event.type === "WorkflowLLMCallStarted" ? event.data.model : undefined
export const watch = watchTask
// @ts-expect-error: a payload without its required field does not compile
publisher.publish({ agentId: "a", taskId: "t" }, "WorkflowFailed", {})
`
    )
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, skipLibCheck: true, lib: ["ES2023", "DOM"], types: [] },
        files: ["consumer.ts"]
      })
    )
    succeeded(await run(repoBin("tsc"), ["-p", "."], project), "tsc in the consumer")
  }, 60_000)

  it("publishes and follows with the same imports under Deno", async () => {
    writeFileSync(join(project, "workflow.deno.js"), sdkProgram("websocket"))
    const taskId = uniqueTask("deno")
    const output = succeeded(
      await run(repoBin("deno"), ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", "workflow.deno.js", gateway.url, redis.url, "agent-pkg", taskId], project),
      "deno run"
    )
    expectWorkflow(output)
  }, 60_000)

  it("bundles the client with esbuild for a browser page that follows a task", async () => {
    writeFileSync(join(project, "page.js"), `import * as client from "taskstream/client"\nglobalThis.taskstream = client\n`)
    succeeded(
      await run(repoBin("esbuild"), ["page.js", "--bundle", "--format=iife", "--platform=browser", "--outfile=page.bundle.js"], project),
      "esbuild"
    )
    const script = readFileSync(join(project, "page.bundle.js"), "utf8")
    // The client carries no server code: no Redis client, no schema library.
    expect(script).not.toContain("ioredis")
    expect(script.length).toBeLessThan(50_000)
    const taskId = uniqueTask("browser")
    browser = await launchBrowser()
    const page = await browser.newPage()
    await screenshotOnFailure(page, "package-esbuild-client", async () => {
      await page.goto(`${gateway.url}/healthz`)
      await page.addScriptTag({ content: script })
      await page.evaluate(({ taskId }) => {
        const w = window as any
        w.followed = []
        w.taskstream.watchTask({ agentId: "agent-pkg", taskId, onEvent: (event: any) => w.followed.push(event.type), onEnd: (end: string) => (w.end = end) })
      }, { taskId })
      const publisher = join(project, "publish.mjs")
      writeFileSync(
        publisher,
        `import { httpPublisher } from "taskstream/publisher"
const http = httpPublisher({ url: process.argv[2] })
const task = { agentId: "agent-pkg", taskId: process.argv[3] }
await http.publish(task, "WorkflowStarted", { goal: "in a page" })
await http.publish(task, "WorkflowFailed", { error: "boom" })
`
      )
      succeeded(await run("node", [publisher, gateway.url, taskId], project), "node publish.mjs")
      await page.waitForFunction(() => (window as any).end !== undefined, undefined, { timeout: 20_000 })
      expect(await page.evaluate(() => (window as any).followed)).toEqual(["WorkflowStarted", "WorkflowFailed"])
      expect(await page.evaluate(() => (window as any).end)).toBe("failed")
    })
  }, 60_000)
})
