/**
 * Starts throwaway Redis servers for the demo and for manual testing, on free loopback ports, and keeps
 * them running until SIGINT/SIGTERM (Ctrl-C), then stops them and removes their temporary directories.
 *
 *   npx tsx scripts/redis-cluster.ts start [--masters 3] [--replicas 1]   # a Redis Cluster
 *   npx tsx scripts/redis-cluster.ts standalone                           # one standalone server
 *
 * The first line printed is machine-readable JSON ({ nodes } or { url }); the rest is for humans.
 */
import { type RedisServer, type RedisTestCluster, startCluster, startRedis } from '../tools/redis-server.js'

function usage(): never {
  console.error('usage: tsx scripts/redis-cluster.ts start [--masters N] [--replicas N] | standalone')
  process.exit(2)
}

function intFlag(args: string[], name: string, fallback: number): number {
  const index = args.indexOf(name)
  if (index === -1) return fallback
  const value = Number(args[index + 1])
  if (!Number.isInteger(value) || value < 0) usage()
  return value
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2)
  let running: RedisTestCluster | RedisServer
  const started = Date.now()
  if (command === 'start') {
    const cluster = await startCluster({
      masters: intFlag(rest, '--masters', 3),
      replicasPerMaster: intFlag(rest, '--replicas', 1),
    })
    running = cluster
    console.log(JSON.stringify({ nodes: cluster.nodes }))
    console.log(`Redis Cluster ready in ${Date.now() - started} ms:`)
    for (const node of cluster.nodes) console.log(`  ${node.host}:${node.port}`)
    console.log(`redisStore({ cluster: ${JSON.stringify(cluster.nodes.slice(0, 1))} })`)
  } else if (command === 'standalone') {
    const server = await startRedis()
    running = server
    console.log(JSON.stringify({ url: server.url }))
    console.log(`Redis ready in ${Date.now() - started} ms at ${server.url}`)
  } else {
    usage()
  }
  console.log('Press Ctrl-C to stop.')

  // The servers' processes are unref'd; this timer keeps the script alive until a signal arrives.
  const keepAlive = setInterval(() => {}, 1 << 30)
  let stopping = false
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    clearInterval(keepAlive)
    console.log(`\n${signal}: stopping...`)
    await running.stop()
    process.exit(0)
  }
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
