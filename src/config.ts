/**
 * Every setting of the gateway, read once from the environment and validated
 * (SPEC §6). A bad value stops start-up with a message naming the variable.
 * The README's settings table mirrors this file.
 */
import { readFileSync } from "node:fs"
import { Config, ConfigProvider, Context, Effect, Layer, Option, type Redacted, Result, Schema, SchemaIssue } from "effect"
import { parseCustomTypes } from "./events/customTypes.ts"
import type { CustomType } from "./events/registry.ts"
import { PRODUCTION_LIMITS, STORAGE_DEFAULTS } from "./limits.ts"
import { parseClusterNodes, parseRedisUrl, type RedisTarget } from "./redisUrl.ts"

const positiveInt = (name: string, fallback: number) =>
  Config.schema(Schema.NumberFromString.check(Schema.isInt(), Schema.isGreaterThan(0)), name).pipe(
    Config.withDefault(fallback)
  )

const NonNegativeInt = Schema.NumberFromString.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))

const nonNegativeInt = (name: string, fallback: number) => Config.schema(NonNegativeInt, name).pipe(Config.withDefault(fallback))

const configError = (message: string) => new Config.ConfigError(new ConfigProvider.SourceError({ message }))

const optionalText = (name: string) => Config.option(Config.NonEmptyString(name))
/** A secret: kept Redacted, so printing the settings (or an error holding them) never shows it. */
const optionalSecret = (name: string) => Config.option(Config.schema(Schema.Redacted(Schema.NonEmptyString), name))

/** `true`/`false` (or `1`/`0`) only: a `yes` or `on` is more likely a typo than a decision. */
const flag = (name: string) =>
  Config.schema(
    Schema.String.check(Schema.makeFilter((text: string) => ["true", "false", "1", "0"].includes(text) || "expected true or false (or 1 or 0)")),
    name
  ).pipe(Config.map((text) => text === "true" || text === "1"))

/** One origin as a browser sends it (`https://app.example.com[:port]`), or `*`. */
const isOrigin = (text: string): boolean => {
  if (text === "*") return true
  try {
    const url = new URL(text)
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === text
  } catch {
    return false
  }
}

const corsOrigins = Config.schema(
  Schema.String.check(Schema.makeFilter((text: string) => {
    // Empty, as `CORS_ORIGINS=` in an env file: CORS off, like unset.
    if (text.trim() === "") return true
    const bad = text.split(",").map((origin) => origin.trim()).find((origin) => !isOrigin(origin))
    return bad === undefined || `expected * or a comma list of origins like https://app.example.com (scheme, host, optional port; no path); got '${bad}'`
  })),
  "CORS_ORIGINS"
)

const limit = (name: string) => Config.option(Config.schema(NonNegativeInt, name))

const redisUrl = Config.schema(
  Schema.String.check(Schema.makeFilter((text) => {
    const parsed = parseRedisUrl(text)
    return typeof parsed === "string" ? parsed : true
  })),
  "REDIS_URL"
).pipe(Config.map((text) => parseRedisUrl(text) as RedisTarget))

const redisClusterNodes = Config.schema(
  Schema.String.check(Schema.makeFilter((text) =>
    parseClusterNodes(text) === undefined ? "expected host:port[,host:port…]" : true
  )),
  "REDIS_CLUSTER_NODES"
).pipe(Config.map((text): RedisTarget => ({ kind: "cluster", nodes: parseClusterNodes(text)!, tls: false })))

/** REDIS_URL (standalone, redis+cluster:// or redis+sentinel://) or REDIS_CLUSTER_NODES; unset = the embedded memory log. */
const redis = Config.all({ url: Config.option(redisUrl), nodes: Config.option(redisClusterNodes) }).pipe(
  Config.mapEffect(({ nodes, url }) =>
    Option.isSome(url) && Option.isSome(nodes)
      ? Effect.fail(configError("set REDIS_URL or REDIS_CLUSTER_NODES, not both"))
      : Effect.succeed(Option.getOrUndefined(Option.orElse(url, () => nodes)))
  )
)

/** EVENT_TYPES_FILE (SPEC §10.2): custom event types, read and checked once; a bad file names the entry. */
const eventTypes = Config.option(Config.NonEmptyString("EVENT_TYPES_FILE")).pipe(
  Config.mapEffect((path): Effect.Effect<ReadonlyMap<string, CustomType>, Config.ConfigError> => {
    if (Option.isNone(path)) return Effect.succeed(new Map())
    let text: string
    try {
      text = readFileSync(path.value, "utf8")
    } catch (error) {
      return Effect.fail(configError(`EVENT_TYPES_FILE: cannot read ${path.value}: ${(error as Error).message}`))
    }
    const parsed = parseCustomTypes(text)
    return Result.isSuccess(parsed)
      ? Effect.succeed(parsed.success)
      : Effect.fail(configError(`EVENT_TYPES_FILE ${path.value}: ${parsed.failure}`))
  })
)

/** The broker bridge (SPEC §10.2b): it reads from the gateway's own Redis. */
const ingest = Config.all({
  pubsub: optionalText("INGEST_PUBSUB"),
  stream: optionalText("INGEST_STREAM"),
  group: Config.schema(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9._:-]{1,64}$/)), "INGEST_GROUP").pipe(
    Config.withDefault("taskstream")
  ),
  claimMs: positiveInt("INGEST_CLAIM_MS", 15000)
}).pipe(
  Config.map(({ claimMs, group, pubsub, stream }) => ({
    pubsub: Option.getOrUndefined(pubsub),
    stream: Option.getOrUndefined(stream),
    group,
    claimMs
  }))
)

const settings = Config.all({
  // 0 asks the system for a free port (the listening line prints the one chosen).
  port: Config.schema(Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 65535 })), "PORT").pipe(
    Config.withDefault(8080)
  ),
  host: Config.String("HOST").pipe(Config.withDefault("0.0.0.0")),
  redis,
  eventTypes,
  ingest,
  redisPrefix: Config.schema(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_.-]{1,32}$/)), "REDIS_PREFIX").pipe(
    Config.withDefault("ts")
  ),
  redisCommandTimeoutMs: positiveInt("REDIS_COMMAND_TIMEOUT_MS", 5000),
  // SPEC §11: ingest answers only after this many replicas acknowledged the append (WAIT), within the timeout.
  redisWaitReplicas: nonNegativeInt("REDIS_WAIT_REPLICAS", 0),
  redisWaitTimeoutMs: positiveInt("REDIS_WAIT_TIMEOUT_MS", STORAGE_DEFAULTS.waitTimeoutMs),
  historyMax: positiveInt("HISTORY_MAX", STORAGE_DEFAULTS.historyMax),
  retentionSeconds: positiveInt("RETENTION_S", STORAGE_DEFAULTS.retentionSeconds),
  // How long an idempotency key is remembered.
  idempotencySeconds: positiveInt("IDEMPOTENCY_S", STORAGE_DEFAULTS.idempotencySeconds),
  // How long the chunks of an LLM call in flight are kept at most (SPEC §8.2), from the latest call start.
  inflightSeconds: positiveInt("INFLIGHT_TTL_S", STORAGE_DEFAULTS.inflightSeconds),
  taskIndexMax: positiveInt("TASK_INDEX_MAX", STORAGE_DEFAULTS.taskIndexMax),
  heartbeatMs: positiveInt("HEARTBEAT_MS", 15000),
  retryMs: positiveInt("SSE_RETRY_MS", 2000),
  maxEventBytes: positiveInt("MAX_EVENT_BYTES", 65536),
  maxBodyBytes: positiveInt("MAX_BODY_BYTES", 1024 * 1024),
  maxBatchEvents: positiveInt("MAX_BATCH_EVENTS", 1000),
  clientBufferBytes: positiveInt("CLIENT_BUFFER_BYTES", 1024 * 1024),
  drainMs: positiveInt("DRAIN_MS", 10000),
  maxSubscriptionsPerSocket: positiveInt("MAX_SUBSCRIPTIONS_PER_SOCKET", 100),
  // A WebSocket opened without a token must send {"op":"auth","token"} within this time.
  authFrameTimeoutMs: positiveInt("AUTH_FRAME_TIMEOUT_MS", 10000),
  // Seconds a WebSocket may stay silent; the server pings it before then and closes it if it does not answer.
  wsIdleTimeoutSeconds: Config.schema(Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 8, maximum: 960 })), "WS_IDLE_TIMEOUT_S").pipe(
    Config.withDefault(60)
  ),
  // Limits (SPEC §6); 0 means unlimited. Unset, they take PRODUCTION_LIMITS with NODE_ENV=production, else 0.
  maxConnections: limit("MAX_CONNECTIONS"),
  maxConnectionsPerSubject: limit("MAX_CONNECTIONS_PER_SUBJECT"),
  publishRate: limit("PUBLISH_RATE"),
  commandRate: limit("COMMAND_RATE"),
  tasksPerHour: limit("TASKS_PER_HOUR"),
  // Seconds an HTTP connection may sit idle (keep-alive, a request whose body never comes); streams are exempt.
  httpIdleTimeoutSeconds: Config.schema(Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 255 })), "HTTP_IDLE_TIMEOUT_S").pipe(
    Config.withDefault(30)
  ),
  // A Redis task log that receives nothing for this long expires (0 = never); a terminal event sets RETENTION_S instead.
  taskIdleSeconds: nonNegativeInt("TASK_IDLE_TTL_S", STORAGE_DEFAULTS.taskIdleSeconds),
  // Bearer token for GET /metrics; unset = open.
  metricsToken: optionalSecret("METRICS_TOKEN"),
  corsOrigins: corsOrigins.pipe(Config.withDefault("")),
  trustProxy: flag("TRUST_PROXY").pipe(Config.withDefault(false)),
  // Auth (SPEC §6): an HS256 secret, a public key, or a JWKS URL.
  authJwtSecret: optionalSecret("AUTH_JWT_SECRET"),
  authJwtPublicKey: optionalText("AUTH_JWT_PUBLIC_KEY"),
  authJwtAlgorithm: Config.Literals(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"], "AUTH_JWT_ALGORITHM").pipe(
    Config.withDefault("RS256" as const)
  ),
  authJwksUrl: Config.option(Config.URL("AUTH_JWKS_URL")),
  // How long one fetch of AUTH_JWKS_URL may take before it counts as failed (then retried with back-off).
  authJwksTimeoutMs: positiveInt("AUTH_JWKS_TIMEOUT_MS", 5000),
  authJwtIssuer: optionalText("AUTH_JWT_ISSUER"),
  authJwtAudience: optionalText("AUTH_JWT_AUDIENCE"),
  // Refuse tokens without `exp` / without `sub`; leeway for `exp`/`nbf` against clock drift.
  authRequireExp: flag("AUTH_REQUIRE_EXP").pipe(Config.withDefault(false)),
  authRequireSub: flag("AUTH_REQUIRE_SUB").pipe(Config.withDefault(false)),
  authClockSkewSeconds: Config.schema(Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 300 })), "AUTH_CLOCK_SKEW_S").pipe(
    Config.withDefault(5)
  ),
  authCookie: Config.String("AUTH_COOKIE").pipe(Config.withDefault("taskstream_token")),
  auth: Config.Literals(["", "none", "jwt"], "AUTH").pipe(Config.withDefault("" as const)),
  nodeEnv: Config.String("NODE_ENV").pipe(Config.withDefault("development")),
  logLevel: Config.Literals(["debug", "info", "warn", "error"], "LOG_LEVEL").pipe(Config.withDefault("info" as const)),
  // The demo agent (POST /api/v1/demo): on by default with the embedded log, off with Redis.
  demo: Config.option(flag("DEMO")),
  // How much faster than real time the demo agent runs (2 halves its delays).
  demoSpeed: Config.schema(Schema.NumberFromString.check(Schema.isGreaterThan(0), Schema.isLessThanOrEqualTo(1000)), "DEMO_SPEED").pipe(
    Config.withDefault(1)
  )
})

type Read = Config.Success<typeof settings>
type Optional = "authJwtPublicKey" | "authJwksUrl" | "authJwtIssuer" | "authJwtAudience"
type Secret = "authJwtSecret" | "metricsToken"
type Limit = keyof typeof PRODUCTION_LIMITS

export type Settings =
  & Omit<Read, Optional | Secret | Limit | "demo">
  & { readonly [K in Optional]: string | undefined }
  & { readonly [K in Secret]: Redacted.Redacted<string> | undefined }
  & { readonly [K in Limit]: number }
  & { readonly demo: boolean }

const flatten = (read: Read): Settings => {
  const limitOf = (name: Limit) => Option.getOrElse(read[name], () => (read.nodeEnv === "production" ? PRODUCTION_LIMITS[name] : 0))
  return {
    ...read,
    maxConnections: limitOf("maxConnections"),
    maxConnectionsPerSubject: limitOf("maxConnectionsPerSubject"),
    publishRate: limitOf("publishRate"),
    commandRate: limitOf("commandRate"),
    tasksPerHour: limitOf("tasksPerHour"),
    metricsToken: Option.getOrUndefined(read.metricsToken),
    authJwtSecret: Option.getOrUndefined(read.authJwtSecret),
    authJwtPublicKey: Option.getOrUndefined(read.authJwtPublicKey),
    authJwksUrl: Option.getOrUndefined(read.authJwksUrl)?.toString(),
    authJwtIssuer: Option.getOrUndefined(read.authJwtIssuer),
    authJwtAudience: Option.getOrUndefined(read.authJwtAudience),
    demo: Option.getOrElse(read.demo, () => read.redis === undefined)
  }
}

/** Rules between settings. */
const consistent = (read: Read): Effect.Effect<Read, Config.ConfigError> => {
  const problem = read.redisWaitReplicas > 0 && read.redis?.kind === "cluster"
    ? "REDIS_WAIT_REPLICAS works with a standalone or Sentinel-managed Redis, not a Redis Cluster"
    : read.redisWaitReplicas > 0 && read.redisWaitTimeoutMs >= read.redisCommandTimeoutMs
    ? "REDIS_WAIT_TIMEOUT_MS must be below REDIS_COMMAND_TIMEOUT_MS"
    : undefined
  return problem === undefined
    ? Effect.succeed(read)
    : Effect.fail(configError(problem))
}

/** A setting with a bad value; the message names the variable and what it expects. */
export class InvalidSetting extends Schema.TaggedError<InvalidSetting>()("InvalidSetting", {
  message: Schema.String
}) {}

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

/** A config failure as the line a person reads: `PORT: expected an integer`. */
export const describeConfigError = (error: Config.ConfigError): string => {
  if (!(error.cause instanceof Schema.SchemaError)) return error.cause.message
  const [first] = formatIssue(error.cause.issue).issues
  const variable = (first?.path ?? []).map(String).join(".")
  const expected = (first?.message ?? "invalid").replace(/^Expected/, "expected")
  return `${variable === "" ? "a setting" : variable}: ${expected}`
}

/** Settings that only make sense together, checked once everything is read. */
const checked = settings.pipe(
  Config.mapEffect((read) =>
    read.redis === undefined && (read.ingest.pubsub !== undefined || read.ingest.stream !== undefined)
      ? Effect.fail(configError(`${read.ingest.pubsub === undefined ? "INGEST_STREAM" : "INGEST_PUBSUB"} needs REDIS_URL: the bridge reads the broker's Redis`))
      : consistent(read)
  )
)

const read = checked.pipe(Effect.mapError((error) => new InvalidSetting({ message: `invalid setting ${describeConfigError(error)}` })))

export class AppConfig extends Context.Service<AppConfig, Settings>()("taskstream/AppConfig") {
  static readonly layer = Layer.effect(AppConfig, Effect.map(read, (values) => AppConfig.of(flatten(values))))

  /** A config for tests and embedding: defaults overridden by `overrides`. */
  static readonly layerWith = (overrides: Partial<Settings>) =>
    Layer.effect(AppConfig, Effect.map(read, (values) => AppConfig.of({ ...flatten(values), ...overrides })))
}
