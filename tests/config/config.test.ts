/**
 * Settings (every one read once, validated): a bad value stops start-up with
 * one human line naming the variable and what it expects.
 */
import { describe, expect, it } from "bun:test"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import { AppConfig } from "../../src/config.ts"

const load = (env: Record<string, string>) =>
  Effect.runPromise(
    Effect.result(
      Effect.gen(function*() {
        return yield* AppConfig
      }).pipe(Effect.provide(AppConfig.layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))))
    )
  )

const refusal = async (env: Record<string, string>) => {
  const result = await load(env)
  if (result._tag === "Success") throw new Error(`accepted ${JSON.stringify(env)}`)
  return (result.failure as { message: string }).message
}

describe("config", () => {
  it("accepts the defaults and good values", async () => {
    const result = await load({ CORS_ORIGINS: "https://app.example.com, http://localhost:5173", TRUST_PROXY: "true", REDIS_URL: "redis://127.0.0.1:6379/15", DEMO: "1" })
    expect(result._tag).toBe("Success")
    if (result._tag !== "Success") return
    expect(result.success).toMatchObject({ trustProxy: true, demo: true, redis: { kind: "standalone" } })
    expect((await load({ CORS_ORIGINS: "*" }))._tag).toBe("Success")
    expect((await load({ CORS_ORIGINS: "" }))._tag).toBe("Success")
  })

  it("keeps the secrets redacted: the settings print without them, the code reads them", async () => {
    const result = await load({ AUTH_JWT_SECRET: "s3cr3t-value", METRICS_TOKEN: "scrape-token" })
    if (result._tag !== "Success") throw new Error("refused")
    const printed = `${JSON.stringify(result.success)} ${String(result.success.authJwtSecret)} ${Bun.inspect(result.success)}`
    expect(printed.includes("s3cr3t-value") || printed.includes("scrape-token")).toBe(false)
    expect(Redacted.value(result.success.authJwtSecret!)).toBe("s3cr3t-value")
    expect(Redacted.value(result.success.metricsToken!)).toBe("scrape-token")
  })

  it.each([
    [{ PORT: "abc" }, "invalid setting PORT: expected an integer"],
    [{ HISTORY_MAX: "-1" }, "invalid setting HISTORY_MAX: expected a value greater than 0"],
    [{ LOG_LEVEL: "loud" }, 'invalid setting LOG_LEVEL: expected "debug" | "info" | "warn" | "error"'],
    [{ TRUST_PROXY: "yes" }, "invalid setting TRUST_PROXY: expected true or false (or 1 or 0)"],
    [{ DEMO: "on" }, "invalid setting DEMO: expected true or false (or 1 or 0)"],
    [{ CORS_ORIGINS: "example.com" }, "invalid setting CORS_ORIGINS: expected * or a comma list of origins like https://app.example.com (scheme, host, optional port; no path); got 'example.com'"],
    [{ CORS_ORIGINS: "https://ok.example.com,https://app.example.com/path" }, "got 'https://app.example.com/path'"],
    [{ REDIS_URL: "redis://127.0.0.1:6379/99" }, "invalid setting REDIS_URL: the database number (the URL's path) must be 0-15, as a Redis server has 16 databases by default; got '/99'"],
    [{ REDIS_URL: "redis://127.0.0.1:6379/x" }, "got '/x'"],
    [{ REDIS_URL: "127.0.0.1:6379" }, "invalid setting REDIS_URL: expected redis://, rediss://, redis+cluster://, redis+sentinel:// (or their rediss forms)"]
  ] as const)("refuses %j with a line naming the variable", async (env, message) => {
    const said = await refusal(env)
    expect(said).toContain(message)
    expect(said).not.toContain("SchemaError")
  })
})
