// A wall clock with sub-millisecond resolution that agrees across processes on one machine.
// Date.now() ticks in whole milliseconds and performance.now() is relative to each process's
// start, so anchor performance.now() on the instant Date.now() ticks over (bounded spin, ≤ 3 ms).
const anchor = (() => {
  const start = Date.now()
  let now = start
  for (let i = 0; i < 5_000_000 && now === start; i++) now = Date.now()
  return now - performance.now()
})()

/** Milliseconds since the Unix epoch, fractional; comparable between bench processes. */
export const wallNow = (): number => anchor + performance.now()
