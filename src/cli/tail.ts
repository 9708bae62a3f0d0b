#!/usr/bin/env node
/**
 * `taskstream-tail <agentId> <taskId> [--url] [--types] [--token] [--chunks] [--no-color] [--connect-timeout]`:
 * print a task's events as they come, one coloured line each, over the
 * reconnecting WebSocket client. An LLM call's text: its chunks with
 * `--chunks` (after a reload, one `so far` line with the text until then), or
 * its completion's stored content when no chunk was shown. Exits 0 after a terminal event, 1 when the
 * gateway refuses the task, 2 on bad arguments or when it cannot connect.
 */
import process from "node:process"
import { parseArgs } from "node:util"
import { connectTaskSocket, fetchEventTypes, type TaskEvent, type TypeSelector } from "../client/index.ts"
import { ID_PATTERN } from "../events/envelope.ts"
import { formatLine } from "./format.ts"

const USAGE =
  "usage: taskstream-tail <agentId> <taskId> [--url http://localhost:8080] [--types llm,tool,...] [--token JWT] [--chunks] [--no-color] [--connect-timeout 10]"

const exit = (code: number, message: string): never => {
  ;(code === 0 ? process.stdout : process.stderr).write(`${message}\n`)
  process.exit(code)
}

const readArgs = () => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        url: { type: "string", default: process.env.TASKSTREAM_URL ?? "http://localhost:8080" },
        types: { type: "string" },
        token: { type: "string", default: process.env.TASKSTREAM_TOKEN },
        chunks: { type: "boolean", default: false },
        "no-color": { type: "boolean", default: false },
        "connect-timeout": { type: "string", default: "10" },
        help: { type: "boolean", short: "h", default: false }
      }
    })
  } catch (error) {
    return exit(2, `${(error as Error).message}\n${USAGE}`)
  }
}

const { values, positionals } = readArgs()
if (values.help) exit(0, USAGE)
if (positionals.length !== 2) exit(2, USAGE)
const [agentId, taskId] = positionals
for (const [name, id] of [["agentId", agentId], ["taskId", taskId]] as const) {
  if (!ID_PATTERN.test(id)) exit(2, `${name} must be 1-128 letters, digits or . _ : - (no spaces or slashes); got '${id}'`)
}
const gatewayUrl = (() => {
  try {
    const url = new URL(values.url)
    if (url.protocol === "http:" || url.protocol === "https:") return url.toString()
  } catch {
    // reported below
  }
  return exit(2, `--url must be the gateway's http:// or https:// URL, like http://localhost:8080; got '${values.url}'`)
})()
const names = values.types?.split(",").map((name) => name.trim()).filter((name) => name !== "")
if (names !== undefined) {
  // The gateway's types and categories, custom ones included. A gateway not reachable yet checks the
  // filter itself once connected, and its refusal is reported below.
  const known = await fetchEventTypes({ baseUrl: gatewayUrl, token: values.token ?? "" }).catch(() => undefined)
  const unknown = known === undefined ? undefined : names.find((name) => !known.types.has(name) && !known.categories.has(name))
  if (unknown !== undefined) {
    exit(2, `unknown event type or category '${unknown}'; the gateway knows the categories ${[...known!.categories].join(", ")} and their types`)
  }
}
const types = names as TypeSelector | undefined
// Token chunks would drown the other lines: shown only when asked for.
const showChunks = values.chunks || types?.includes("WorkflowLLMCallChunk") === true
const colour = !values["no-color"] && process.stdout.isTTY === true && process.env.NO_COLOR === undefined

const connectTimeoutS = Number(values["connect-timeout"])
if (!(connectTimeoutS > 0)) exit(2, `--connect-timeout must be a positive number of seconds; got '${values["connect-timeout"]}'`)
let connected = false
const socket = connectTaskSocket({
  baseUrl: gatewayUrl,
  // Node 20 has no global WebSocket (Node 22, Bun and Deno have): the `ws` package stands in.
  WebSocket: globalThis.WebSocket ?? ((await import("ws")).WebSocket as unknown as typeof WebSocket),
  ...(values.token === undefined ? {} : { token: values.token }),
  onStatus: (status) => {
    if (status === "open") connected = true
    // Before the first connection, retries are the wait for the gateway, not a lost connection.
    if (status === "reconnecting" && connected) process.stderr.write("connection lost; reconnecting…\n")
  }
})
/**
 * The text each LLM call showed on this stream (SPEC §8.2): a compacted chunk
 * replaces it, other chunks append; a completion shows its stored content when
 * none was shown.
 */
const shown = new Map<string, string>()
const callOf = (event: TaskEvent): string | undefined => {
  if (event.type === "WorkflowLLMCallStarted") return event.data.call_id ?? event.id
  if (event.type === "WorkflowLLMCallChunk" || event.type === "WorkflowLLMCallCompleted") return event.data.call_id ?? undefined
  return undefined
}

const print = (event: TaskEvent) => {
  const callId = callOf(event)
  if (event.type === "WorkflowLLMCallChunk") {
    if (!showChunks) return
    if (callId !== undefined) shown.set(callId, event.data.compacted === true ? event.data.chunk : (shown.get(callId) ?? "") + event.data.chunk)
    return void process.stdout.write(`${formatLine(event, colour)}\n`)
  }
  if (event.type === "WorkflowLLMCallCompleted") {
    const streamed = callId === undefined ? undefined : shown.get(callId)
    if (callId !== undefined) shown.delete(callId)
    const content = streamed === undefined || streamed === "" ? event.data.content : undefined
    return void process.stdout.write(`${formatLine(event, colour, { content })}\n`)
  }
  process.stdout.write(`${formatLine(event, colour)}\n`)
}

const connectTimer = setTimeout(() => connected || exit(2, `could not connect to ${values.url} within ${connectTimeoutS} s`), connectTimeoutS * 1000)

socket.subscribe({
  agentId,
  taskId,
  ...(types === undefined ? {} : { types }),
  onEvent: print,
  onResync: (resync) => process.stderr.write(`older events were trimmed from the log; continuing at ${resync.oldest}\n`),
  onEnd: () => {
    clearTimeout(connectTimer)
    socket.close()
    process.exit(0)
  },
  onError: (error) => {
    if (error.code !== "log_unavailable") exit(1, `${error.code}: ${error.message}`)
  }
})
