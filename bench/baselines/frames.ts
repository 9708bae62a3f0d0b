// SSE framing shared by the baselines. The live channel carries the envelope built by
// src/log/append.lua, whose field order is fixed: {"id":…,"type":…,"agentId":…,"taskId":…,"time":…,"data":…}
// (no "id" for an ephemeral event), so the parts are sliced out by position — no JSON.parse, no validation.
export const TERMINAL = new Set(["WorkflowCompleted", "WorkflowFailed", "WorkflowCancelled"])
export const RETRY_FRAME = "retry: 2000\n\n"
export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
}

export interface Frame {
  readonly id: string
  readonly type: string
  readonly text: string
}

export const sseFrame = (id: string, type: string, data: string): string =>
  id ? `id: ${id}\nevent: ${type}\ndata: ${data}\n\n` : `event: ${type}\ndata: ${data}\n\n`

export const frameOfEnvelope = (envelope: string): Frame => {
  const id = envelope.startsWith('{"id":"') ? envelope.slice(7, envelope.indexOf('"', 7)) : ""
  const typeAt = envelope.indexOf('"type":"') + 8
  const type = envelope.slice(typeAt, envelope.indexOf('"', typeAt))
  const data = envelope.slice(envelope.indexOf(',"data":') + 8, -1)
  return { id, type, text: sseFrame(id, type, data) }
}

/** Frames of XRANGE entries `[id, [field, value, …]]`. */
export const framesOfEntries = (entries: [string, string[]][]): Frame[] =>
  entries.map(([id, fields]) => {
    let type = ""
    let data = "{}"
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === "type") type = fields[i + 1]!
      else if (fields[i] === "data") data = fields[i + 1]!
    }
    return { id, type, text: sseFrame(id, type, data) }
  })

/** Redis stream ids `<ms>-<seq>` compared numerically. */
export const idAfter = (a: string, b: string): boolean => {
  const da = a.indexOf("-")
  const db = b.indexOf("-")
  const ma = Number(a.slice(0, da))
  const mb = Number(b.slice(0, db))
  return ma !== mb ? ma > mb : Number(a.slice(da + 1)) > Number(b.slice(db + 1))
}

const STREAM_ROUTE = /^\/api\/v1\/agents\/([A-Za-z0-9._:-]{1,128})\/tasks\/([A-Za-z0-9._:-]{1,128})\/events\/stream$/

export const parseStreamRoute = (url: URL): { agentId: string; taskId: string } | undefined => {
  const m = STREAM_ROUTE.exec(url.pathname)
  return m ? { agentId: m[1]!, taskId: m[2]! } : undefined
}

const INGEST_ROUTE = /^\/api\/v1\/agents\/([A-Za-z0-9._:-]{1,128})\/tasks\/([A-Za-z0-9._:-]{1,128})\/events$/

export const parseIngestRoute = (url: URL): { agentId: string; taskId: string } | undefined => {
  const m = INGEST_ROUTE.exec(url.pathname)
  return m ? { agentId: m[1]!, taskId: m[2]! } : undefined
}

export const prefix = process.env.REDIS_PREFIX ?? "ts"
export const logKey = (taskId: string): string => `${prefix}:{${taskId}}:log`
export const liveChannel = (taskId: string): string => `${prefix}:{${taskId}}:live`

/** The readiness line the bench waits for, in the gateway's format. */
export const announce = (port: number): void => {
  console.log(JSON.stringify({ message: "listening", url: `http://127.0.0.1:${port}` }))
}
