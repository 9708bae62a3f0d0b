/**
 * A misbehaving proxy in front of a gateway, on its own loopback port, as
 * clients meet them in the field: one that refuses WebSocket upgrades (`403`,
 * as proxies that strip them do), or one that buffers SSE responses (holds
 * every byte of `/events/stream` until the response ends, headers included).
 * Everything else is passed through byte for byte, one request per connection.
 */
import { connect, createServer, type Server, type Socket } from "node:net"

/** Read at each new connection: a test may change it while the proxy runs. */
export interface ProxyMode {
  refuseUpgrades?: boolean
  bufferSse?: boolean
}

export interface TestProxy {
  readonly url: string
  readonly mode: ProxyMode
  /** Upgrade requests refused so far, SSE responses held so far. */
  readonly counts: { refusedUpgrades: number; heldStreams: number }
  close(): Promise<void>
}

const HEAD_END = "\r\n\r\n"

export const startProxy = async (target: string, mode: ProxyMode): Promise<TestProxy> => {
  const { hostname, port } = new URL(target)
  const sockets = new Set<Socket>()
  const counts = { refusedUpgrades: 0, heldStreams: 0 }
  const server: Server = createServer((client) => {
    sockets.add(client)
    client.on("close", () => sockets.delete(client))
    client.on("error", () => client.destroy())
    let head = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf(HEAD_END)
      if (end < 0) return
      client.off("data", onData)
      const text = head.subarray(0, end).toString("latin1")
      const rest = head.subarray(end + HEAD_END.length)
      const [requestLine, ...headerLines] = text.split("\r\n")
      const upgrade = headerLines.some((line) => /^upgrade:\s*websocket/i.test(line))
      if (upgrade && mode.refuseUpgrades) {
        counts.refusedUpgrades++
        client.end("HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 9\r\nconnection: close\r\n\r\nforbidden")
        return
      }
      // One request per connection, so each response can be told apart.
      const headers = upgrade ? headerLines : [...headerLines.filter((line) => !/^connection:/i.test(line)), "connection: close"]
      const upstream = connect(Number(port), hostname)
      sockets.add(upstream)
      upstream.on("close", () => {
        sockets.delete(upstream)
        client.destroy()
      })
      upstream.on("error", () => upstream.destroy())
      client.on("close", () => upstream.destroy())
      upstream.write(`${[requestLine, ...headers].join("\r\n")}${HEAD_END}`)
      if (rest.length > 0) upstream.write(rest)
      client.pipe(upstream)
      const held = mode.bufferSse && requestLine.includes("/events/stream")
      if (!held) return void upstream.pipe(client)
      counts.heldStreams++
      const buffered: Array<Buffer> = []
      upstream.on("data", (data: Buffer) => buffered.push(data))
      upstream.on("end", () => client.end(Buffer.concat(buffered)))
    }
    client.on("data", onData)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${address.port}`,
    mode,
    counts,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
