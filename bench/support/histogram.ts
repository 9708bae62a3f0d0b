// Latency histogram: 0.05 ms buckets up to 200 ms, then 5 ms buckets up to 120 s.
// Fixed size, mergeable across load-generator processes, no per-sample allocation.
const FINE_STEP = 0.05
const FINE_MAX = 200
const COARSE_STEP = 5
const COARSE_MAX = 120_000
const FINE = Math.ceil(FINE_MAX / FINE_STEP)
const SIZE = FINE + Math.ceil((COARSE_MAX - FINE_MAX) / COARSE_STEP) + 1

export interface Histogram {
  readonly counts: Uint32Array
  count: number
  max: number
}

export const makeHistogram = (): Histogram => ({ counts: new Uint32Array(SIZE), count: 0, max: 0 })

export const record = (h: Histogram, ms: number): void => {
  const v = ms < 0 ? 0 : ms
  const index = v < FINE_MAX
    ? Math.floor(v / FINE_STEP)
    : Math.min(SIZE - 1, FINE + Math.floor((v - FINE_MAX) / COARSE_STEP))
  h.counts[index]++
  h.count++
  if (v > h.max) h.max = v
}

const upperBound = (index: number): number =>
  index < FINE ? (index + 1) * FINE_STEP : FINE_MAX + (index - FINE + 1) * COARSE_STEP

export const percentile = (h: Histogram, p: number): number => {
  if (h.count === 0) return NaN
  const rank = Math.ceil((p / 100) * h.count)
  let seen = 0
  for (let i = 0; i < SIZE; i++) {
    seen += h.counts[i]!
    if (seen >= rank) return Math.min(upperBound(i), h.max)
  }
  return h.max
}

/** Sparse form for shipping between processes: [index, count] pairs. */
export const toSparse = (h: Histogram): { pairs: number[]; count: number; max: number } => {
  const pairs: number[] = []
  for (let i = 0; i < SIZE; i++) if (h.counts[i]) pairs.push(i, h.counts[i]!)
  return { pairs, count: h.count, max: h.max }
}

export const mergeSparse = (h: Histogram, s: { pairs: number[]; count: number; max: number }): void => {
  for (let i = 0; i < s.pairs.length; i += 2) h.counts[s.pairs[i]!]! += s.pairs[i + 1]!
  h.count += s.count
  if (s.max > h.max) h.max = s.max
}
