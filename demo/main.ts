/**
 * `npm run demo`: several application nodes on coherent-cache in front of a database, under load, with
 * a live view in the terminal and a dashboard in the browser. See README.md ("The demo").
 *
 *   npm run demo                                   embedded: no Redis or database needed
 *   REDIS_URL=... DATABASE_URL=... npm run demo    separate node processes on them
 *   npm run demo -- --duration 30 --nodes 4 --port 8080 [--own-redis] [--rate 800]
 */
import { parseArgs } from 'node:util'
import { DemoUsageError, runDemo } from './run.js'

const HELP = `Usage: npm run demo -- [options]

  --duration <s>   how long the demo runs, in seconds (default 60)
  --nodes <n>      how many application nodes (default 3)
  --port <port>    dashboard port (default: a free one; the address is printed)
  --rate <n>       requests per second of the load generator (default 800)
  --own-redis      start a redis-server of the demo's own (with DATABASE_URL), so that the outage
                   scene can stop and restart it
  -h, --help       this text

Environment: with REDIS_URL and DATABASE_URL set, the nodes run as separate processes on that Redis
and PostgreSQL; without them, everything runs embedded in this process.`

function positive(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) {
    throw new DemoUsageError(
      `--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${text}`,
    )
  }
  return value
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      nodes: { type: 'string' },
      port: { type: 'string' },
      rate: { type: 'string' },
      'own-redis': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(HELP)
    return 0
  }
  const controller = new AbortController()
  process.once('SIGINT', () => {
    console.log('\nStopping (Ctrl-C again to quit at once)…')
    controller.abort()
    process.once('SIGINT', () => process.exit(130))
  })
  await runDemo({
    duration: positive('duration', values.duration, 60),
    nodes: Math.floor(positive('nodes', values.nodes, 3)),
    port: Math.floor(positive('port', values.port, 0, true)),
    rate: positive('rate', values.rate, 800),
    ownRedis: values['own-redis'],
    redisUrl: process.env.REDIS_URL || undefined,
    databaseUrl: process.env.DATABASE_URL || undefined,
    signal: controller.signal,
  })
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    if (error instanceof DemoUsageError || (error as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${(error as Error).message}\n\n${HELP}`)
      process.exitCode = 2
    } else {
      console.error(error)
      process.exitCode = 1
    }
  },
)
