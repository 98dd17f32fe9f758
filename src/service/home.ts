/**
 * `GET /` on the service's port, for a person who opens it in a browser. With embedded
 * settlement the dashboard answers it (a redirect to `/dashboard`: src/http/dashboard/http.ts);
 * with a remote settlement service there is no dashboard here, so it answers this plain
 * index of the service's own routes, read from its contract.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import { Context, Effect, Option } from "effect"
import { ServiceApiRemote } from "../http/ServiceApi.js"

const routes = (): ReadonlyArray<readonly [method: string, path: string, what: string]> => {
  const listed: Array<readonly [string, string, string]> = []
  HttpApi.reflect(ServiceApiRemote, {
    onGroup: () => {},
    onEndpoint: ({ endpoint, mergedAnnotations }) => {
      const what = Option.orElse(Context.getOption(mergedAnnotations, OpenApi.Summary), () => Context.getOption(mergedAnnotations, OpenApi.Description))
      listed.push([endpoint.method, endpoint.path.replace(/:(\w+)/g, "{$1}"), Option.getOrElse(what, () => "")])
    }
  })
  return [...listed, ["GET", "/openapi.json", "this contract as OpenAPI"], ["GET", "/docs", "its documentation page"]]
}

export const indexText = (metricsPort: number, metricsPath: string): string =>
  "ringmaster orchestrator service (settlement: remote, so no dashboard here)\n\n" +
  routes().map(([method, path, what]) => `${method.padEnd(5)} ${path.padEnd(16)} ${what}`).join("\n") +
  `\n\nPrometheus metrics: port ${metricsPort}, ${metricsPath}\n`

/** `GET /` answering the index, on the router the contract is served from. */
export const layer = (metricsPort: number, metricsPath: string) =>
  HttpApiBuilder.Router.use((router) => router.get("/", Effect.succeed(HttpServerResponse.text(indexText(metricsPort, metricsPath)))))
