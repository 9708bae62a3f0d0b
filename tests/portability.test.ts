/**
 * SPEC §1: the same `src/` runs on Bun and Deno; `Bun.*` and `Deno.*` appear
 * only in the two runtime entries. This scans every other source file for a
 * runtime-specific import or global; the type checks (`npm run typecheck`:
 * tsc for the Bun side, `deno check` for the Deno entry) back it up.
 */
import { describe, expect, it } from "bun:test"
import { readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"

const root = join(import.meta.dir, "..")
const src = join(root, "src")
const ENTRIES = ["src/main.bun.ts", "src/main.deno.ts"]

/** Specifiers only one runtime resolves: its own modules, its hono adapter, registry and URL imports. */
const RUNTIME_SPECIFIC = /^(bun|bun:.*|hono\/(bun|deno)|@hono\/(bun|deno)|npm:.*|jsr:.*|https?:.*)$/

const sourceFiles = (): Array<string> =>
  readdirSync(src, { recursive: true, encoding: "utf8" })
    .filter((path) => /\.(ts|tsx|js|mjs)$/.test(path))
    .map((path) => relative(root, join(src, path)))
    .filter((path) => !ENTRIES.includes(path))

/** Every module specifier in the source, type-only imports and dynamic imports included. */
const specifiers = (code: string): Array<string> =>
  [...code.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g)].map((match) => match[1])

const transpiler = new Bun.Transpiler({ loader: "ts" })

/** String literals, which may name a runtime in a message. */
const STRINGS = /"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`/g

/** `Bun` or `Deno` used as an identifier in the code (comments, types and strings stripped first). */
const runtimeGlobals = (code: string): Array<string> =>
  [...transpiler.transformSync(code).replace(STRINGS, '""').matchAll(/\b(Bun|Deno)\b/g)].map((match) => match[0])

describe("Runtime portability", () => {
  const files = sourceFiles()

  it("finds the shared sources and both runtime entries", () => {
    expect(files).toContain("src/gateway.ts")
    expect(files.length).toBeGreaterThan(20)
    for (const entry of ENTRIES) expect(readFileSync(join(root, entry), "utf8").length).toBeGreaterThan(0)
  })

  it("imports nothing Bun- or Deno-specific outside the two entries", () => {
    const offending = files.flatMap((file) =>
      specifiers(readFileSync(join(root, file), "utf8"))
        .filter((specifier) => RUNTIME_SPECIFIC.test(specifier))
        .map((specifier) => `${file}: ${specifier}`)
    )
    expect(offending).toEqual([])
  })

  it("uses no Bun or Deno global outside the two entries", () => {
    const offending = files.flatMap((file) => runtimeGlobals(readFileSync(join(root, file), "utf8")).map((name) => `${file}: ${name}`))
    expect(offending).toEqual([])
  })

  it("recognises what it looks for", () => {
    expect(specifiers(`import type { ServerWebSocket } from "bun"\nconst m = await import("hono/deno")`)).toEqual(["bun", "hono/deno"])
    expect(["bun", "bun:sqlite", "hono/bun", "hono/deno", "npm:ioredis", "jsr:@std/http"].every((s) => RUNTIME_SPECIFIC.test(s))).toBe(true)
    expect(["hono", "hono/ws", "node:fs", "effect", "./gateway.ts"].some((s) => RUNTIME_SPECIFIC.test(s))).toBe(false)
    expect(runtimeGlobals(`// Bun corks frames\nexport const hint = "run it with Bun"\nexport const port = () => Deno.env.get("PORT")`)).toEqual(["Deno"])
  })
})
