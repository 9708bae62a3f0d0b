/**
 * The dashboard's token (SPEC §8.3): pasted into the header's token form, or
 * given once as `?access_token=`, kept in localStorage so every tab uses it.
 * The client asks `current()` for every new connection, so once the user
 * pastes a fresh token after the old one expired the stream continues from
 * its last id. Without a token the gateway's cookie (if any) applies.
 */
import { byId, timeOfDay } from "./view.ts"

const STORAGE_KEY = "taskstream_token"

/** The `exp` claim of a JWT (ms), if it has a readable one. */
const expiryOf = (token: string): number | undefined => {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")
    const exp = (JSON.parse(atob(payload)) as { exp?: unknown }).exp
    return typeof exp === "number" ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

export class TokenBox {
  private token: string

  /** `changed` runs when this tab's user pastes or clears a token. */
  constructor(private readonly changed: () => void) {
    const fromUrl = new URLSearchParams(location.search).get("access_token")
    if (fromUrl !== null) localStorage.setItem(STORAGE_KEY, fromUrl)
    this.token = localStorage.getItem(STORAGE_KEY) ?? ""
    const button = byId<HTMLButtonElement>("token-button")
    const form = byId<HTMLFormElement>("token-form")
    const input = byId<HTMLInputElement>("token-input")
    button.addEventListener("click", () => {
      form.hidden = !form.hidden
      if (!form.hidden) input.focus()
    })
    form.addEventListener("submit", (event) => {
      event.preventDefault()
      this.use(input.value.trim())
      input.value = ""
      form.hidden = true
    })
    byId("token-clear").addEventListener("click", () => {
      this.use("")
      form.hidden = true
    })
    // Another tab pasted a token.
    window.addEventListener("storage", (event) => {
      if (event.key !== STORAGE_KEY) return
      this.token = event.newValue ?? ""
      this.render()
    })
    setInterval(() => this.render(), 5000)
    this.render()
  }

  /** The token for the next connection or request ("" = none). */
  readonly current = (): string => this.token

  private use(token: string): void {
    this.token = token
    if (token === "") localStorage.removeItem(STORAGE_KEY)
    else localStorage.setItem(STORAGE_KEY, token)
    this.render()
    this.changed()
  }

  private render(): void {
    const note = byId("token-note")
    const expiry = this.token === "" ? undefined : expiryOf(this.token)
    const expired = expiry !== undefined && expiry <= Date.now()
    note.dataset.expired = String(expired)
    note.textContent = this.token === ""
      ? "no token"
      : expiry === undefined
      ? "token set"
      : expired
      ? `token expired at ${timeOfDay(new Date(expiry).toISOString()).slice(0, 8)}: paste a new one`
      : `token until ${timeOfDay(new Date(expiry).toISOString()).slice(0, 8)}`
  }
}
