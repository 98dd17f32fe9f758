/**
 * `Authorization: Payment <token>` on the paid routes (ServiceApi.ts): any other
 * scheme, a bearer API key included, or none is no payment credential, and the route
 * answers it with the 402 challenge.
 */
import { Effect, Layer, Redacted } from "effect"
import { PaymentAuthorization } from "./ServiceApi.js"

const PAYMENT = /^Payment +(\S{1,256}) *$/i

/** The payment token in an `Authorization` header's value, if it carries one. */
export const paymentCredential = (authorization: string): Redacted.Redacted<string> | undefined => {
  const match = PAYMENT.exec(authorization)
  return match === null ? undefined : Redacted.make(match[1]!)
}

export const PaymentAuthorizationLive = Layer.succeed(
  PaymentAuthorization,
  PaymentAuthorization.of({ payment: (authorization) => Effect.succeed(paymentCredential(Redacted.value(authorization))) })
)
