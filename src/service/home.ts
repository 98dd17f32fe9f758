/**
 * `GET /` on the service's port, for a person who opens it in a browser. With embedded
 * settlement the dashboard answers it (a redirect to `/dashboard`: src/http/dashboard/http.ts);
 * with a remote settlement service there is no dashboard here, so it answers this plain
 * index of the service's own routes.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { paths } from "./routes.js"

const routes: ReadonlyArray<readonly [method: string, path: string, what: string]> = [
  ["GET", paths.health, "liveness and region"],
  ["GET", paths.info, "this orchestrator: agent id, wallet, referral code, region, prices"],
  ["POST", paths.inference, "a paid inference: {\"payer_wallet\", \"prompt\"}, paid through the payer's mandate"],
  ["POST", paths.tasks.replace(":agent", "{agent}"), "a paid task for one of the pipeline's agents"]
]

export const indexText = (metricsPort: number, metricsPath: string): string =>
  "ringmaster orchestrator service (settlement: remote, so no dashboard here)\n\n" +
  routes.map(([method, path, what]) => `${method.padEnd(5)} ${path.padEnd(16)} ${what}`).join("\n") +
  `\n\nPrometheus metrics: port ${metricsPort}, ${metricsPath}\n`

/** `router` with `GET /` answering the index. */
export const withIndex = (metricsPort: number, metricsPath: string) =>
<E, R>(router: HttpRouter.HttpRouter<E, R>): HttpRouter.HttpRouter<E, R> =>
  HttpRouter.get(router, "/", Effect.succeed(HttpServerResponse.text(indexText(metricsPort, metricsPath))))
