/**
 * A publisher inside the gateway process, straight on the `EventLog` and
 * `ControlQueue` services:
 * the same validation (`decodeDraft`) and the same log as every other
 * publisher, without a network hop. With the embedded memory log this is the
 * only way to publish and to read control commands in-process (the demo agent).
 */
import { Effect, Result, Stream } from "effect"
import type { ControlQueue } from "../log/ControlQueue.ts"
import type { EventLog } from "../log/EventLog.ts"
import { type CommandOptions, DEFAULT_READER, makePublisher, PublishError, publishErrorOf, type ReceivedCommand, type TaskRef, type WorkflowPublisher } from "./index.ts"

export const logPublisher = (log: EventLog["Service"], control: ControlQueue["Service"]): WorkflowPublisher => {
  const publisher = makePublisher(
    async (task, drafts) => {
      const ids = await Effect.runPromise(Effect.result(log.append(task, drafts)))
      if (Result.isFailure(ids)) throw publishErrorOf(ids.failure)
      return [...ids.success]
    },
    async () => {}
  )

  // Not an async generator: its `return()` must stop a reader that is waiting for the next command.
  const commands = (task: TaskRef, options: CommandOptions = {}): AsyncIterableIterator<ReceivedCommand> => {
    const reader = options.reader ?? DEFAULT_READER
    const ack = (id: string) =>
      Effect.runPromise(Effect.result(control.ack(task.taskId, reader, id))).then((acked) => {
        if (Result.isFailure(acked)) throw new PublishError("unavailable", acked.failure.message)
      })
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

  return { ...publisher, commands }
}
