/** A unique random id (`crypto.randomUUID` exists only in secure contexts). */
export const newRef = (): string => {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("")
}
