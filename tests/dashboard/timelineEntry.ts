/** The dashboard's timeline as a page global, to feed it events in a real browser. */
import { Timeline } from "../../src/dashboard/timeline.ts"

;(globalThis as { dashboard?: { Timeline: typeof Timeline } }).dashboard = { Timeline }
