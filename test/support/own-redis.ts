import { type RedisServer, type StartRedisOptions, startRedis } from '../../tools/redis-server.js'

/**
 * Runs `body` against a redis-server of its own (for tests that kill, restart or flush it) and something
 * `open` makes for it (a store, a bus); closes that and stops the server afterwards, even when `body`
 * fails.
 */
export async function withOwnRedis<T extends { close(): Promise<void> }>(
  open: (server: RedisServer) => T,
  body: (server: RedisServer, opened: T) => Promise<void>,
  options?: StartRedisOptions,
): Promise<void> {
  const server = await startRedis(options)
  let opened: T | undefined
  try {
    opened = open(server)
    await body(server, opened)
  } finally {
    await opened?.close()
    await server.stop()
  }
}
