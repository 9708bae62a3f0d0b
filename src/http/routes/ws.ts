/**
 * `GET /api/v1/ws` (SPEC §4.3): the WebSocket endpoint, on the same server
 * and port as the rest. The upgrade itself is the runtime's (injected as
 * `webSockets`); this module wires a socket to its session.
 */
import { Hono } from "hono"
import { WsConnection } from "../../transport/websocket.ts"
import type { RouteDeps, WsSessionHandle } from "../deps.ts"
import { WsSession } from "../wsSession.ts"

const encoder = new TextEncoder()

/** Size of a text frame in UTF-8 bytes, counted only when it could be over `limit`. */
const overLimit = (text: string, limit: number): boolean =>
  text.length > limit || (text.length * 3 > limit && encoder.encode(text).byteLength > limit)

export const wsRoutes = (deps: RouteDeps) =>
  new Hono().get(
    "/ws",
    deps.webSockets.upgradeWebSocket(() => {
      let connection: WsConnection | undefined
      let session: WsSession | undefined
      const handle: WsSessionHandle = { shutdown: () => connection?.close("shutdown") }
      return {
        onOpen: (_event, ws) => {
          const current: WsConnection = new WsConnection(deps.webSockets.wireSocket(ws), {
            bufferBytes: deps.config.clientBufferBytes,
            onClose: () => {
              deps.sessions.delete(handle)
              session?.close()
            }
          })
          connection = current
          session = new WsSession(deps, current)
          deps.sessions.add(handle)
        },
        onMessage: (event) => {
          if (connection === undefined || session === undefined || connection.isClosed) return
          if (typeof event.data !== "string") return session.receiveBinary()
          if (overLimit(event.data, deps.config.maxEventBytes)) return connection.close("tooBig")
          session.receive(event.data)
        },
        onClose: () => connection?.closedByPeer(),
        onError: () => connection?.closedByPeer()
      }
    })
  )
