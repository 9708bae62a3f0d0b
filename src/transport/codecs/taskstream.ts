/**
 * taskstream's own SSE encoding (SPEC §4.1): one frame per event, `id:` = its
 * log id, `event:` = its type, `data:` = its payload (or its whole envelope),
 * plus `resync` and `heartbeat` frames. Stateless: an event's frame is built
 * once and shared by every connection of the same format.
 */
import type { LogEvent } from "../../events/envelope.ts"
import type { SseCodec } from "../sse.ts"

export type SseFormat = "payload" | "envelope"

const encoder = new TextEncoder()

const sseFrame = (id: string | undefined, event: string, data: string): string =>
  `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`

const TOKEN_EXPIRED = sseFrame(undefined, "token_expired", JSON.stringify({ reason: "token_expired" }))

const codecFor = (key: string, data: (event: LogEvent) => string): SseCodec => {
  const encode = (event: LogEvent) => encoder.encode(sseFrame(event.id, event.type, data(event)))
  return {
    open: () => "",
    event: (event) => event.encoded(key, encode),
    resync: (oldest) => sseFrame(undefined, "resync", JSON.stringify({ reason: "history_trimmed", oldest })),
    heartbeat: () => sseFrame(undefined, "heartbeat", JSON.stringify({ time: new Date().toISOString() })),
    // The response ends after the terminal event's own frame; a stream cut for an expired
    // token says so (SPEC §8.3), so the client reconnects with a fresh one, not the same.
    end: (reason) => reason === "token_expired" ? TOKEN_EXPIRED : ""
  }
}

export const TaskstreamCodecs: Record<SseFormat, SseCodec> = {
  payload: codecFor("sse:payload", (event) => event.dataJson),
  envelope: codecFor("sse:envelope", (event) => event.json)
}
