/** An EVENT_TYPES_FILE for the tests of clients that must handle custom types (SPEC §10.2). */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** A durable custom type and a terminal one, in their own category `review`. */
export const ReviewTypes = {
  types: {
    ReviewRequested: { category: "review", payload: { type: "object", properties: { by: { type: "string" } } } },
    ReviewRejected: { category: "review", terminal: "failed", payload: { type: "object" } }
  }
}

/** The path of a fresh file holding `types` (ReviewTypes by default). */
export const eventTypesFile = (types: unknown = ReviewTypes): string => {
  const file = join(mkdtempSync(join(tmpdir(), "taskstream-types-")), "event-types.json")
  writeFileSync(file, JSON.stringify(types))
  return file
}
