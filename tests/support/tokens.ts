/** Test tokens, signed with hono's JWT helpers, and a JWKS server on loopback. */
import { createServer, type Server } from "node:http"
import { sign } from "hono/jwt"

export const SECRET = "test-secret-that-is-long-enough-for-hs256"

export interface Scopes {
  readonly subscribe?: ReadonlyArray<string>
  readonly publish?: ReadonlyArray<string>
  readonly control?: ReadonlyArray<string>
}

export const claims = (scopes: Scopes, extra: Record<string, unknown> = {}) => ({
  sub: "user-1",
  exp: Math.floor(Date.now() / 1000) + 3600,
  taskstream: scopes,
  ...extra
})

export const hsToken = (scopes: Scopes, extra: Record<string, unknown> = {}, secret = SECRET, alg: "HS256" | "HS384" = "HS256") =>
  sign(claims(scopes, extra) as never, secret, alg)

/** An RSA key pair: the public key as PEM and JWK, and a signer for RS256 tokens. */
export const rsaKeys = async (kid = "key-1") => {
  const pair = await crypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"]
  )
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey))
  const pem = `-----BEGIN PUBLIC KEY-----\n${btoa(String.fromCharCode(...spki)).replace(/(.{64})/g, "$1\n")}\n-----END PUBLIC KEY-----\n`
  const jwk = { ...(await crypto.subtle.exportKey("jwk", pair.publicKey)), kid, alg: "RS256", use: "sig" }
  const privateJwk = { ...(await crypto.subtle.exportKey("jwk", pair.privateKey)), kid, alg: "RS256" }
  return {
    pem,
    jwk,
    token: (scopes: Scopes, extra: Record<string, unknown> = {}) => sign(claims(scopes, extra) as never, privateJwk as never, "RS256")
  }
}

/** Serve `{keys}` as a JWKS document on a free loopback port. */
export const serveJwks = async (keys: ReadonlyArray<unknown>): Promise<{ url: string; close: () => void }> => {
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json" })
    response.end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address() as { port: number }
  return { url: `http://127.0.0.1:${address.port}/jwks.json`, close: () => server.close() }
}
