/**
 * `GET /api/v1/ws` (SPEC §4.3): the WebSocket endpoint, on the same server
 * and port as the rest. Authenticated and admitted like an SSE stream (the
 * token from the header, `access_token` or the cookie); the upgrade itself is
 * the runtime's (injected as `webSockets`); this module wires a socket to its session.
 */
import { Effect, Fiber, FiberMap, Result } from "effect"
import { Hono } from "hono"
import type { WSEvents } from "hono/ws"
import { type Principal, tokenOf } from "../auth.ts"
import type { RouteDeps } from "../deps.ts"
import { apiError, errorResponse } from "../errors.ts"
import { admissionError, authenticate, clientAddress, drainingError } from "../guard.ts"
import type { Admitted } from "../../transport/connections.ts"
import { WsConnection } from "../../transport/websocket.ts"
import { WsSession } from "../wsSession.ts"

const encoder = new TextEncoder()

/** Whether a text frame is over `limit` UTF-8 bytes, encoding it only when it could be. */
const overLimit = (text: string, limit: number): boolean =>
  text.length > limit || (text.length * 3 > limit && encoder.encode(text).byteLength > limit)

/**
 * The socket's events. `principal` is undefined for a socket opened without a
 * token: it gets AUTH_FRAME_TIMEOUT_MS to send an `auth` frame (the registry
 * closes it with 4001 when that deadline passes); its provisional place under
 * the connection limits is exchanged for its subject's once that is known.
 */
const socketEvents = (deps: RouteDeps, principal: Principal | undefined, anonymous: string, admission: Admitted): WSEvents => {
  let connection: WsConnection | undefined
  let session: WsSession | undefined
  /** Holds the socket's scope, with its subscriptions' FiberMap, open until the socket closes. */
  let socketScope: Fiber.Fiber<never> | undefined
  /** The socket's place under the connection limits (none while an auth frame was refused one). */
  let place: Admitted | undefined = admission
  return {
    onOpen: (_event, ws) => {
      const opened: WsConnection = new WsConnection(deps.webSockets.wireSocket(ws), {
        identified: principal !== undefined,
        subject: principal?.subject ?? anonymous,
        expiresAt: principal?.expiresAt ?? Date.now() + deps.config.authFrameTimeoutMs,
        bufferBytes: deps.config.clientBufferBytes,
        writes: deps.connections.writes,
        frames: deps.connections.wsFrames,
        topics: deps.connections.wsTopics,
        onClose: (reason) => {
          deps.connections.remove(opened, reason)
          place?.release()
          session?.close()
          if (socketScope !== undefined) deps.runtime.fork(Fiber.interrupt(socketScope))
        }
      })
      connection = opened
      const pending = principal ?? {
        anonymous,
        admit: (subject: string) => {
          place?.release()
          place = undefined
          const admission = deps.connections.admit(subject)
          if (admission.ok) place = admission
          return admission
        }
      }
      // A fork starts at once: the session exists when the first frame arrives.
      socketScope = deps.runtime.fork(
        Effect.gen(function*() {
          session = new WsSession(deps, yield* FiberMap.make<string, void>(), opened, pending)
          return yield* Effect.never
        }).pipe(Effect.scoped)
      )
      deps.connections.add(opened)
    },
    onMessage: (event) => {
      if (connection === undefined || session === undefined || connection.isClosed) return
      if (typeof event.data !== "string") return session.receiveBinary()
      // Bun refuses these itself (maxPayloadLength); this covers runtimes that do not.
      if (overLimit(event.data, deps.config.maxEventBytes)) return connection.close("message_too_big")
      session.receive(event.data)
    },
    onClose: () => connection?.closedByPeer(),
    onError: () => connection?.closedByPeer()
  }
}

export const wsRoutes = (deps: RouteDeps) =>
  new Hono().get("/ws", async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return errorResponse(c, apiError("upgrade_required", "GET /api/v1/ws takes a WebSocket upgrade", "upgrade"))
    }
    if (deps.lifecycle.draining) return errorResponse(c, drainingError)
    const anonymous = clientAddress(c, deps.config.trustProxy)
    // Browsers cannot set headers on a WebSocket: without a token, the first frame may carry it.
    if (deps.auth.required && tokenOf(c, deps.config.authCookie) === undefined) {
      // Until it authenticates, the socket holds a place under its client address.
      const provisional = deps.connections.admit(anonymous)
      if (!provisional.ok) return errorResponse(c, admissionError(provisional.limit))
      try {
        return await deps.webSockets.upgradeWebSocket(c, socketEvents(deps, undefined, anonymous, provisional))
      } catch (error) {
        provisional.release()
        throw error
      }
    }
    const principal = await authenticate(c, deps)
    if (Result.isFailure(principal)) return principal.failure
    const admission = deps.connections.admit(principal.success.subject)
    if (!admission.ok) return errorResponse(c, admissionError(admission.limit))
    try {
      return await deps.webSockets.upgradeWebSocket(c, socketEvents(deps, principal.success, anonymous, admission))
    } catch (error) {
      admission.release()
      throw error
    }
  })
