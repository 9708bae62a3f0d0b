/**
 * The gateway's limits and the defaults of its bounded settings, in one
 * module below everything else: the config, the log, the publishers and the
 * clients import it; it imports nothing.
 */

/**
 * How much each task log keeps, and for how long — the defaults of HISTORY_MAX,
 * RETENTION_S, IDEMPOTENCY_S, INFLIGHT_TTL_S, TASK_INDEX_MAX, TASK_IDLE_TTL_S
 * and REDIS_WAIT_TIMEOUT_MS, shared by the gateway's config and the publishers
 * that write the same Redis layout.
 */
export const STORAGE_DEFAULTS = {
  historyMax: 10000,
  retentionSeconds: 86400,
  idempotencySeconds: 86400,
  inflightSeconds: 3600,
  taskIndexMax: 10000,
  /** A day without an event, as long as an ended task is kept (RETENTION_S). */
  taskIdleSeconds: 86400,
  waitTimeoutMs: 1000
} as const

/** The per-instance limits (SPEC §6) when NODE_ENV=production leaves them unset; 0 elsewhere (unlimited). */
export const PRODUCTION_LIMITS = {
  maxConnections: 10_000,
  maxConnectionsPerSubject: 100,
  publishRate: 1000,
  commandRate: 10,
  tasksPerHour: 1000
} as const
