/**
 * A publisher inside the gateway process, straight on the `EventLog` and
 * `ControlQueue` services and the gateway's `Registry`: the same validation
 * (`decodeDraft`) and the same log as every other publisher, without a network
 * hop. With the embedded memory log this is the only way to publish and to
 * read control commands in-process (the demo agent).
 *
 * It is made in a scope (the gateway's): its appends and acks run as fibers
 * of a FiberSet in that scope, so closing it (shutdown) interrupts them and
 * nothing runs detached with an empty context.
 */
import { Effect, FiberSet, Result, Stream } from "effect"
import { Registry } from "../events/RegistryService.ts"
import { ControlQueue } from "../log/ControlQueue.ts"
import { EventLog } from "../log/EventLog.ts"
import { type CommandOptions, DEFAULT_READER, makePublisher, PublishError, publishErrorOf, type ReceivedCommand, type TaskRef, type WorkflowPublisher } from "./index.ts"

export const makeLogPublisher = Effect.gen(function*() {
  const registry = yield* Registry
  const log = yield* EventLog
  const control = yield* ControlQueue
  const run = yield* FiberSet.makeRuntimePromise()
  const publisher = makePublisher(
    registry,
    async (task, drafts) => {
      const ids = await run(Effect.result(log.append(task, drafts)))
      if (Result.isFailure(ids)) throw publishErrorOf(ids.failure)
      return [...ids.success]
    },
    async () => {}
  )

  // Not an async generator: its `return()` must stop a reader that is waiting for the next command.
  const commands = (task: TaskRef, options: CommandOptions = {}): AsyncIterableIterator<ReceivedCommand> => {
    const reader = options.reader ?? DEFAULT_READER
    const ack = (id: string) =>
      run(Effect.result(control.ack(task.taskId, reader, id))).then((acked) => {
        if (Result.isFailure(acked)) throw new PublishError("unavailable", acked.failure.message)
      })
    // The stream needs no service; it runs while the iterator is read and ends with its `return()`.
    const source = Stream.toAsyncIterable(control.commands(task, reader))[Symbol.asyncIterator]()
    let previous: ReceivedCommand | undefined
    const iterator: AsyncIterableIterator<ReceivedCommand> = {
      next: async () => {
        await previous?.ack()
        const next = await source.next()
        if (next.done) return next
        let acked: Promise<void> | undefined
        previous = { ...next.value, ack: () => (acked ??= ack(next.value.id)) }
        return { done: false, value: previous }
      },
      return: async (value?: unknown) => {
        await source.return?.(value)
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator]: () => iterator
    }
    return iterator
  }

  return { ...publisher, commands } satisfies WorkflowPublisher
})
