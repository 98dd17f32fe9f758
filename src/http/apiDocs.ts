/**
 * The Swagger UI page at `/docs`, in a module of its own because server.ts imports
 * it on the first request to `/docs` (see `layerDocs` there): the page embeds Swagger
 * UI (about 1.9 MB of script and style) and its OpenAPI document, and building it at
 * start was a tenth of the service's cold start.
 *
 * The page is `HttpApiSwagger.layer`'s own, unchanged: that layer is built here on a
 * router of its own, and its router answers the request.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import { Effect, Layer } from "effect"

/** A router serving only `HttpApiSwagger.layer({ path })` for the given API. */
export const swaggerRouter = (
  api: HttpApi.Api["Type"],
  path: `/${string}`
): Effect.Effect<HttpRouter.HttpRouter<unknown, HttpRouter.HttpRouter.DefaultServices>> =>
  Effect.scoped(
    Effect.flatMap(
      Layer.build(
        HttpApiSwagger.layer({ path }).pipe(
          // The same `Router.Live` the swagger layer provides to itself: built once, so the route lands in this one.
          Layer.provideMerge(HttpApiBuilder.Router.Live),
          Layer.provide(Layer.succeed(HttpApi.Api, api))
        )
      ),
      (context) => Effect.provide(HttpApiBuilder.Router.router, context)
    )
  )
