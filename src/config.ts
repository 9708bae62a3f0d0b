/**
 * Every setting of the gateway, read once from the environment and validated
 * (SPEC §6). A bad value stops start-up with a message naming the variable.
 * The README's settings table mirrors this file.
 */
import { Config, Context, Effect, Layer, Option, Schema } from "effect"

const positiveInt = (name: string, fallback: number) =>
  Config.schema(Schema.NumberFromString.check(Schema.isInt(), Schema.isGreaterThan(0)), name).pipe(
    Config.withDefault(fallback)
  )

const settings = Config.all({
  // 0 asks the system for a free port (the listening line prints the one chosen).
  port: Config.schema(Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 65535 })), "PORT").pipe(
    Config.withDefault(8080)
  ),
  host: Config.String("HOST").pipe(Config.withDefault("0.0.0.0")),
  redisUrl: Config.option(Config.URL("REDIS_URL")),
  redisPrefix: Config.schema(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_.-]{1,32}$/)), "REDIS_PREFIX").pipe(
    Config.withDefault("ts")
  ),
  redisCommandTimeoutMs: positiveInt("REDIS_COMMAND_TIMEOUT_MS", 5000),
  historyMax: positiveInt("HISTORY_MAX", 10000),
  retentionSeconds: positiveInt("RETENTION_S", 86400),
  idempotencySeconds: positiveInt("IDEMPOTENCY_S", 86400),
  taskIndexMax: positiveInt("TASK_INDEX_MAX", 10000),
  heartbeatMs: positiveInt("HEARTBEAT_MS", 15000),
  retryMs: positiveInt("SSE_RETRY_MS", 2000),
  maxEventBytes: positiveInt("MAX_EVENT_BYTES", 65536),
  maxBodyBytes: positiveInt("MAX_BODY_BYTES", 1024 * 1024),
  maxBatchEvents: positiveInt("MAX_BATCH_EVENTS", 1000),
  clientBufferBytes: positiveInt("CLIENT_BUFFER_BYTES", 1024 * 1024),
  drainMs: positiveInt("DRAIN_MS", 10000)
})

export type Settings = Omit<Config.Success<typeof settings>, "redisUrl"> & { readonly redisUrl: string | undefined }

export class AppConfig extends Context.Service<AppConfig, Settings>()("taskstream/AppConfig") {
  static readonly layer = Layer.effect(
    AppConfig,
    Effect.map(settings, (read) => AppConfig.of({ ...read, redisUrl: Option.getOrUndefined(read.redisUrl)?.toString() }))
  )

  /** A config for tests and embedding: defaults overridden by `overrides`. */
  static readonly layerWith = (overrides: Partial<Settings>) =>
    Layer.effect(
      AppConfig,
      Effect.map(settings, (read) =>
        AppConfig.of({ ...read, redisUrl: Option.getOrUndefined(read.redisUrl)?.toString(), ...overrides })
      )
    )
}
