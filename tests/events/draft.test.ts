/**
 * The fast path of the common draft `{type, data}` agrees with the generic
 * Schema decode on every input: the same draft or the same error.
 */
import { describe, expect, it } from "bun:test"
import { Result } from "effect"
import fc from "fast-check"
import { decodeDraft } from "../../src/events/draft.ts"
import { builtinRegistry, EventTypes } from "../../src/events/registry.ts"

const comparable = (result: ReturnType<typeof decodeDraft>) =>
  Result.isSuccess(result)
    ? { ok: { ...result.success, data: JSON.parse(result.success.dataJson) } }
    : { error: { field: result.failure.field, message: result.failure.message } }

const key = fc.oneof(fc.constantFrom("type", "data", "time", "idempotency_key", "__proto__", "constructor", "step", "model"), fc.string({ maxLength: 6 }))
const value = fc.letrec((tie) => ({
  any: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 8 }),
    fc.array(tie("any"), { maxLength: 3 }),
    fc.dictionary(key, tie("any"), { maxKeys: 4 })
  )
})).any
const type = fc.oneof(fc.constantFrom(...EventTypes), fc.string({ maxLength: 12 }))
/** Drafts as publishers send them, most of them near the fast path's shape. */
const draft = fc.oneof(
  fc.record({ type, data: fc.dictionary(key, value, { maxKeys: 4 }) }),
  fc.record({ type, data: value }),
  fc.record({ type, data: value, extra: fc.dictionary(key, value, { maxKeys: 2 }) }).map(({ extra, ...rest }) => ({ ...extra, ...rest })),
  fc.record({ type: value, data: value }, { requiredKeys: [] }),
  value
)

describe("the {type, data} fast path", () => {
  it("answers every draft as the generic decode does (parsed from JSON, as the routes get it)", () => {
    fc.assert(
      fc.property(draft, fc.constantFrom("", "[2]"), (input, prefix) => {
        const parsed = JSON.parse(JSON.stringify(input) ?? "null")
        expect(comparable(decodeDraft(builtinRegistry, parsed, prefix))).toEqual(comparable(decodeDraft(builtinRegistry, parsed, prefix, false)))
      }),
      { numRuns: 3000, seed: 17 }
    )
  })

  it("agrees on a data object whose keys are __proto__ or constructor", () => {
    for (const text of ['{"type":"WorkflowStepStarted","data":{"__proto__":{"x":1},"step":1}}', '{"type":"WorkflowStarted","data":{"constructor":1}}']) {
      const parsed = JSON.parse(text)
      expect(comparable(decodeDraft(builtinRegistry, parsed))).toEqual(comparable(decodeDraft(builtinRegistry, parsed, "", false)))
    }
  })
})
