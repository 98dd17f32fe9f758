/**
 * Bounds on a request body that hold before it is parsed: JSON only, and nested at
 * most `MAX_JSON_DEPTH` levels.
 *
 * Schema decoding, `JSON.stringify` and error formatting all walk a value
 * recursively, so a body like `[[[[…]]]]` a few thousand levels deep overflows the
 * stack in whichever of them runs first. No request of this API nests deeper than a
 * few levels (metadata is free-form, but 32 levels leave it ample room), so the depth
 * is checked on the raw text, by a loop that counts brackets outside strings,
 * before anything recursive sees the body.
 *
 * Used by the settlement API's edge (`edge.ts`, `requestBody.ts`), the MCP route
 * (`mcp/transport.ts`) and the orchestrator's own routes (`service/routes.ts`).
 */
import { Limits } from "../domain/limits.js"

/** Deepest nesting of arrays and objects a request body may have. */
export const MAX_JSON_DEPTH = Limits.jsonDepth

export const tooDeepMessage = `the request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels, the depth limit`

/** The cause of a body read refused by `exceedsDepth` (the edge answers it with a 400 naming `body`). */
export class JsonTooDeep extends Error {
  constructor() {
    super(tooDeepMessage)
    this.name = "JsonTooDeep"
  }
}

/**
 * Whether `text` opens more than `maxDepth` arrays or objects inside one another.
 * Counts `[` and `{` against `]` and `}` outside string literals (a `\` escapes the
 * next character inside one). Well-formedness is `JSON.parse`'s business: this only
 * has to be exact on valid JSON and never recurse.
 */
export const exceedsDepth = (text: string, maxDepth: number = MAX_JSON_DEPTH): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c /* \ */) i++
      else if (c === 0x22 /* " */) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > maxDepth) return true
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--
    }
  }
  return false
}

/**
 * Whether a `Content-Type` value names JSON. An absent one counts as JSON, as the
 * platform's payload decoding treats it; `application/json` with any parameters
 * (`; charset=utf-8`) is JSON; every other type is not.
 */
export const isJsonContentType = (contentType: string | undefined): boolean => {
  if (contentType === undefined) return true
  const essence = contentType.split(";", 1)[0]!.trim().toLowerCase()
  return essence === "" || essence === "application/json"
}

/** Whether the request carries a body: a non-zero `Content-Length`, or a chunked one. */
export const hasBody = (headers: Readonly<Record<string, string | undefined>>): boolean => {
  const length = headers["content-length"]
  if (length !== undefined) return length.trim() !== "0"
  return headers["transfer-encoding"] !== undefined
}

/**
 * The `Content-Type` to refuse with 415, if any: a non-JSON one on a method that may
 * carry a body, whether or not this request has one. The platform decodes a payload by
 * its declared type, and a multipart parser waits on an empty body rather than fail.
 */
export const unsupportedContentType = (
  method: string,
  headers: Readonly<Record<string, string | undefined>>
): string | undefined => {
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return undefined
  const contentType = headers["content-type"]
  return contentType !== undefined && !isJsonContentType(contentType) ? contentType : undefined
}

export const unsupportedMediaTypeMessage = (contentType: string) =>
  `the request body must be JSON (Content-Type: application/json), not ${contentType.slice(0, 100)}`
