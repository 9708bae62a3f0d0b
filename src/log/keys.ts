/**
 * Redis key names (SPEC §5). The `{taskId}` hash tag keeps a task's keys in
 * one cluster slot; the task index lives outside any task's slot.
 */
export interface TaskKeys {
  readonly log: string
  readonly live: string
  readonly control: string
  /** The chunks of the task's LLM calls in flight (SPEC §8.2), a hash written by append.lua. */
  readonly inflight: string
  idempotency(key: string): string
  /** A control command's idempotency key: apart from the events' ones, so the two never collide. */
  commandIdempotency(key: string): string
}

export const taskKeys = (prefix: string, taskId: string): TaskKeys => {
  const base = `${prefix}:{${taskId}}:`
  return {
    log: `${base}log`,
    live: `${base}live`,
    control: `${base}ctl`,
    inflight: `${base}inflight`,
    idempotency: (key) => `${base}idem:${key}`,
    commandIdempotency: (key) => `${base}ctlidem:${key}`
  }
}

export const taskIndexKey = (prefix: string): string => `${prefix}:tasks`

/** Each indexed task's last id and status; the hash tag puts it in the index's cluster slot. */
export const taskStatusKey = (prefix: string): string => `{${prefix}:tasks}:status`
/** The event registry as the append script reads it (SPEC §10.2): a hash type → kind (d|t|e). */
export const registryKey = (prefix: string): string => `${prefix}:registry`

/** The taskId of a live channel name, or undefined when it is not one. */
export const taskOfChannel = (prefix: string, channel: string): string | undefined => {
  const start = prefix.length + 2
  const end = channel.length - 6
  return channel.startsWith(`${prefix}:{`) && channel.endsWith("}:live") && end > start
    ? channel.slice(start, end)
    : undefined
}
