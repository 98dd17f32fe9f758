/** Checks of the numbers a caller passes the orchestrator: a bad one is an `InvalidInput` naming its field. */
import { Either } from "effect"
import { InvalidInput } from "../../domain/errors.js"

export const invalid = (field: string, message: string) => new InvalidInput({ field, message })

export const checkInteger = (field: string, value: number, min: number, max: number) =>
  Number.isInteger(value) && value >= min && value <= max
    ? Either.void
    : Either.left(invalid(field, `must be an integer from ${min} to ${max}, got ${value}`))
