/**
 * An SSE response's body, behind the one interface an SSE connection writes
 * to. The runtime entry picks the implementation (`RuntimeBindings.sseBody`):
 * web-standard streams everywhere (Deno, `app.request()`), Bun's "direct"
 * streams on Bun — no stream controller, reader, queue or pending read per
 * connection: a flush goes straight into the socket's buffer. An idle
 * connection then holds only what the ceiling's does.
 */

/** Where a connection's bytes go. */
export interface SseOutput {
  /** Hand the bytes of one flush to the runtime. */
  write(chunk: Uint8Array): void
  /** Bytes handed over that the runtime has not sent to the network yet. */
  backlog(): number
  /** Send what was written, then end the response. */
  end(): void
  /** Drop what is unsent and end the response in error (a slow consumer is cut off). */
  abort(): void
}

/** What fills a body: told when the body can take bytes, and when its client went away. */
export interface SseSource {
  open(output: SseOutput): void
  cancel(): void
}

/** Makes the response body of one SSE connection. */
export type SseBody = (source: SseSource) => ReadableStream<Uint8Array>

/**
 * Chunks sized in bytes with a high-water mark of 1, so `1 - desiredSize` is
 * the backlog in bytes (a large mark would make Bun reserve memory for it on
 * every idle connection).
 */
const BACKLOG_IN_BYTES: QueuingStrategy<Uint8Array> = { highWaterMark: 1, size: (chunk) => chunk?.byteLength ?? 0 }

/** A web-standard ReadableStream; the output is its own underlying source (no per-stream closures). */
class WebOutput implements SseOutput, UnderlyingDefaultSource<Uint8Array> {
  private controller!: ReadableStreamDefaultController<Uint8Array>

  constructor(private readonly source: SseSource) {}

  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.controller = controller
    this.source.open(this)
  }

  cancel(): void {
    this.source.cancel()
  }

  write(chunk: Uint8Array): void {
    this.controller.enqueue(chunk)
  }

  backlog(): number {
    return 1 - (this.controller.desiredSize ?? 1)
  }

  end(): void {
    try {
      this.controller.close()
    } catch {
      // already closed by the runtime
    }
  }

  abort(): void {
    this.controller.error(new Error("slow consumer"))
  }
}

export const webSseBody: SseBody = (source) => new ReadableStream<Uint8Array>(new WebOutput(source), BACKLOG_IN_BYTES)

/** The controller of a Bun direct stream (typed here: the shared sources see no Bun types). */
interface DirectController {
  write(chunk: Uint8Array): number | Promise<number>
  flush(): number | Promise<number>
  close(error?: Error): void
}

/**
 * A Bun direct stream: `pull` is called once when the response starts and
 * hands over the controller, which stays valid until `close`. A write the
 * socket cannot take at once is buffered by Bun and answered with a promise
 * that settles once the socket has drained: until then, those bytes are the
 * backlog.
 */
class DirectOutput implements SseOutput {
  readonly type = "direct"
  private controller: DirectController | undefined
  private unsent = 0
  /** The promise of the last write that had to wait; settled, everything written has gone out. */
  private draining: Promise<number> | undefined

  constructor(private readonly source: SseSource) {}

  pull(controller: DirectController): void {
    this.controller = controller
    this.source.open(this)
  }

  cancel(): void {
    this.controller = undefined
    this.source.cancel()
  }

  write(chunk: Uint8Array): void {
    if (this.controller === undefined) return
    const written = this.controller.write(chunk)
    if (typeof written !== "number") this.waitFor(written, chunk.byteLength)
    this.controller.flush()
  }

  backlog(): number {
    return this.unsent
  }

  end(): void {
    const controller = this.controller
    this.controller = undefined
    controller?.close()
  }

  abort(): void {
    const controller = this.controller
    this.controller = undefined
    this.unsent = 0
    controller?.close(new Error("slow consumer"))
  }

  private waitFor(drained: Promise<number>, bytes: number): void {
    this.unsent += bytes
    if (this.draining === drained) return
    this.draining = drained
    const settle = () => {
      if (this.draining !== drained) return
      this.draining = undefined
      this.unsent = 0
    }
    drained.then(settle, settle)
  }
}

export const directSseBody: SseBody = (source) => new ReadableStream(new DirectOutput(source) as unknown as UnderlyingDefaultSource<Uint8Array>)
