/**
 * Talking to the data API: the key travels only as `Authorization: Bearer`, and a key
 * the server stops accepting signs the viewer out.
 */
import { state } from "./state.js"

/**
 * What a rejected key does: main.ts sets it to the session's sign-out at boot. Held
 * here rather than imported, so the session (which talks to the server) and the
 * server calls stay free of a module cycle.
 */
let onKeyRejected: (message: string) => void = () => {}

export const whenKeyRejected = (handler: (message: string) => void): void => {
  onKeyRejected = handler
}

/** The server stopped accepting the key: sign out with this message. */
export const keyRejected = (message: string): void => onKeyRejected(message)

/** The server answered 401: the key is not (or no longer) accepted. */
export class AuthError extends Error {}

export const request = <A>(path: string, key?: string): Promise<A> =>
  fetch(path, { headers: { authorization: "Bearer " + (key ?? state.key) }, cache: "no-store" }).then((res) => {
    if (res.status === 401) throw new AuthError("The key was not accepted.")
    return res.json().catch(() => null).then((body: { message?: string } | null) => {
      if (!res.ok) throw new Error((body && body.message) || ("HTTP " + res.status))
      return body as A
    })
  })

/** A request with the signed-in key; a 401 signs out. */
export const api = <A>(path: string): Promise<A> =>
  request<A>(path).catch((error: unknown) => {
    if (error instanceof AuthError) keyRejected("Your key is no longer accepted; sign in again.")
    throw error
  })

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))
