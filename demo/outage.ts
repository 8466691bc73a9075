/**
 * What the outage scene can take away, by mode:
 * - embedded: the in-memory L2 and bus, through the fault switch (faults.ts): every call fails while
 *   "Redis" is down, and the demo says that this is simulated;
 * - a Redis the demo started itself (--own-redis): the real redis-server, stopped and started again on
 *   the same port (it comes back empty, as a restarted Redis without persistence does);
 * - a Redis given by REDIS_URL: nothing. The demo did not start it and will not stop it.
 */
import type { FaultSwitch } from './faults.js'

export type OutageControl =
  | {
      available: true
      /** What is taken away, for the screen. */
      what: string
      takeDown(): Promise<void>
      bringBack(): Promise<void>
    }
  | { available: false; reason: string }

export function simulatedOutage(faults: FaultSwitch): OutageControl {
  return {
    available: true,
    what: 'the in-memory L2 and bus (simulated: every call to them fails while down)',
    takeDown: async () => faults.down(),
    bringBack: async () => faults.up(),
  }
}

export function redisServerOutage(server: { url: string; kill(): Promise<void>; start(): Promise<void> }) {
  return {
    available: true,
    what: `the demo's own redis-server at ${server.url} (stopped, then started again empty)`,
    takeDown: () => server.kill(),
    bringBack: () => server.start(),
  } satisfies OutageControl
}

export const noOutage = (reason: string): OutageControl => ({ available: false, reason })
