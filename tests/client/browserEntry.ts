/** The typed client as a page global, for the browser tests of `watchTask`. */
import * as client from "../../src/client/index.ts"

;(globalThis as { taskstream?: typeof client }).taskstream = client
