/**
 * A loopback port nothing listens on: the OS picks one, it is closed again, and the
 * caller binds it. Used by the build's warm-up start, the benchmarks and the tests.
 */
import * as net from "node:net"

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
