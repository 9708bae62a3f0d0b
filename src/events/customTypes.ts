/**
 * Custom event types from `EVENT_TYPES_FILE` (SPEC §10.2): parsed and checked
 * once at start-up; a bad file is refused with a message naming the entry.
 *
 * Payloads are JSON Schemas checked by `@cfworker/json-schema`: small, no
 * dependencies, maintained, and it interprets schemas without generating
 * code (no `new Function`/`eval`), so it runs the same on Bun, Deno and under
 * a strict Content-Security-Policy.
 */
import { Validator } from "@cfworker/json-schema"
import { Result, Schema, SchemaIssue } from "effect"
import { CUSTOM_TYPE_NAME, type CustomType, Endings, isBuiltinType, type PayloadCheck } from "./registry.ts"

/** Category names: lower case like the built-ins (types start upper case), usable in a comma-separated `types` filter. */
const CATEGORY_NAME = /^[a-z][a-z0-9_-]{0,31}$/

const Entry = Schema.Struct({
  category: Schema.String.check(Schema.isPattern(CATEGORY_NAME)),
  terminal: Schema.optionalKey(Schema.Literals(Endings)),
  ephemeral: Schema.optionalKey(Schema.Literal(true)),
  payload: Schema.Record(Schema.String, Schema.Unknown)
})

const File = Schema.Struct({ types: Schema.Record(Schema.String, Schema.Unknown) })

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

const describe = (error: Schema.SchemaError): string => {
  const [first] = formatIssue(error.issue).issues
  const path = (first?.path ?? []).map(String).join(".")
  return `${path === "" ? "" : `${path}: `}${first?.message ?? "invalid"}`
}

/** JSON Pointer segments of a cfworker `instanceLocation` (`#/a/b~1c`). */
const pointerPath = (location: string): Array<string> =>
  location.replace(/^#\/?/, "").split("/").filter((part) => part !== "").map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))

/** Keywords that only say "something below failed": the error below names the field. */
const COMPOSITE = new Set(["properties", "items", "prefixItems", "additionalProperties", "patternProperties", "allOf", "$ref", "unevaluatedProperties", "unevaluatedItems", "dependentSchemas"])

/** The first local `$ref` (`#/…`) in `schema` that points nowhere in it. */
const unresolvedRef = (root: unknown): string | undefined => {
  const resolves = (ref: string) =>
    pointerPath(ref).reduce<unknown>(
      (node, part) => (typeof node === "object" && node !== null && Object.hasOwn(node, part) ? (node as Record<string, unknown>)[part] : undefined),
      root
    ) !== undefined
  const visit = (node: unknown): string | undefined => {
    if (typeof node !== "object" || node === null) return undefined
    const ref = (node as Record<string, unknown>).$ref
    if (typeof ref === "string" && ref.startsWith("#/") && !resolves(ref)) return ref
    for (const child of Object.values(node)) {
      const found = visit(child)
      if (found !== undefined) return found
    }
    return undefined
  }
  return visit(root)
}

const checkOf = (payload: Record<string, unknown>): PayloadCheck => {
  const validator = new Validator(payload as never, "2020-12", false)
  return (data) => {
    const { valid, errors } = validator.validate(data)
    if (valid) return undefined
    const leaf = errors.find((error) => !COMPOSITE.has(error.keyword)) ?? errors[0]
    const path = pointerPath(leaf.instanceLocation)
    const missing = leaf.keyword === "required" ? /property "([^"]*)"/.exec(leaf.error)?.[1] : undefined
    return { path: missing === undefined ? path : [...path, missing], message: leaf.error }
  }
}

/** Parse the file's text into the custom types it defines, or a message naming the bad entry. */
export const parseCustomTypes = (text: string): Result.Result<ReadonlyMap<string, CustomType>, string> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return Result.fail(`not JSON: ${(error as Error).message}`)
  }
  const file = Schema.decodeUnknownResult(File)(json, { onExcessProperty: "error" })
  if (Result.isFailure(file)) return Result.fail(describe(file.failure))
  const types = new Map<string, CustomType>()
  for (const [name, raw] of Object.entries(file.success.types)) {
    const at = `types.${name}`
    if (isBuiltinType(name)) return Result.fail(`${at}: ${name} is a built-in event type and cannot be redefined`)
    if (!CUSTOM_TYPE_NAME.test(name)) return Result.fail(`${at}: a type name matches [A-Z][A-Za-z0-9]{2,63}`)
    const entry = Schema.decodeUnknownResult(Entry)(raw, { onExcessProperty: "error" })
    if (Result.isFailure(entry)) return Result.fail(`${at}.${describe(entry.failure)}`)
    const { category, terminal, ephemeral, payload } = entry.success
    if (terminal !== undefined && ephemeral) return Result.fail(`${at}: a type is terminal or ephemeral, not both`)
    if (payload.type !== "object") return Result.fail(`${at}.payload: must be a JSON Schema with "type": "object"`)
    const ref = unresolvedRef(payload)
    if (ref !== undefined) return Result.fail(`${at}.payload: Unresolved $ref "${ref}"`)
    let check: PayloadCheck
    try {
      check = checkOf(payload)
      // A schema the validator cannot use fails here, at start-up, not on the first publish.
      check({})
    } catch (error) {
      return Result.fail(`${at}.payload: ${(error as Error).message.split("\n")[0]}`)
    }
    types.set(name, {
      category,
      ...(terminal === undefined ? {} : { ends: terminal }),
      ...(ephemeral === undefined ? {} : { ephemeral }),
      payload,
      check
    })
  }
  return Result.succeed(types)
}
