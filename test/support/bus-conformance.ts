/**
 * The Bus conformance suite: every invalidation bus (memory, Redis, Redis Cluster, ...) must pass the same
 * tests. `factory()` returns the bus of one node: for a networked bus a new instance (own connections), for
 * an in-process bus a view of one shared instance. Use it from a test file:
 *
 *   describe.each(cases)('$name', ({ name, factory, options }) => busConformance(name, factory, options))
 *
 * Channels carry a random per-run prefix. The failure tests (connection killed, server restarted) run
 * only when the options provide the means.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { Bus, BusStatus, BusSubscription } from '../../src/bus/bus.js'
import { eventually } from './store-conformance.js'

export interface DedicatedBusServer {
  /** A bus of one node on the dedicated server. */
  factory: () => Bus
  /** Stops the server (every master of a cluster), waits `downMs`, starts it again on the same address. */
  restart: (downMs: number) => Promise<void>
  /** How long recovery may take after a restart. @default 5000 */
  recoveryMs?: number
  /** Stops the server for good. */
  stop: () => Promise<void>
}

export interface BusConformanceOptions {
  /**
   * Drops the subscriber connections on the server side (e.g. `CLIENT KILL TYPE pubsub` on the nodes that
   * carry them) and resolves to how many were dropped.
   */
  killSubscribers?: () => Promise<number>
  /** Starts a server of its own that the suite may restart (outage tests). */
  dedicated?: () => Promise<DedicatedBusServer>
}

/** One subscriber that records what it got. */
class Probe {
  readonly messages: Buffer[] = []
  readonly statuses: BusStatus[] = []
  subscription: BusSubscription | undefined
  onStatusHook: ((status: BusStatus) => void) | undefined

  async subscribe(bus: Bus, channel: string): Promise<this> {
    this.subscription = await bus.subscribe(
      channel,
      (message) => this.messages.push(Buffer.from(message)),
      (status) => {
        this.statuses.push(status)
        this.onStatusHook?.(status)
      },
    )
    return this
  }

  texts(): string[] {
    return this.messages.map((message) => message.toString())
  }
}

/** Publishes, retrying while publish rejects (what the cache does with failed invalidations). */
async function publishEventually(bus: Bus, channel: string, text: string, timeoutMs = 10_000): Promise<void> {
  await eventually(
    () =>
      bus.publish(channel, Buffer.from(text)).then(
        () => true,
        () => false,
      ),
    timeoutMs,
    `publish of ${text} to succeed`,
  )
}

export function busConformance(name: string, factory: () => Bus, options: BusConformanceOptions = {}): void {
  describe(`${name} conforms to Bus`, () => {
    const prefix = `conformance:${randomUUID()}:`
    let counter = 0
    const channel = (label = 'ch') => `${prefix}${label}:${counter++}`
    const open: Bus[] = []
    /** The bus of a new node, closed after the test. */
    const node = () => {
      const bus = factory()
      open.push(bus)
      return bus
    }

    afterEach(async () => {
      await Promise.all(open.splice(0).map((bus) => bus.close()))
    })

    it('has a name', () => {
      expect(node().name.length).toBeGreaterThan(0)
    })

    it('delivers a message published right after subscribe() resolved', async () => {
      const [a, b] = [node(), node()]
      const ch = channel()
      const probe = await new Probe().subscribe(a, ch)
      await b.publish(ch, Buffer.from('first'))
      await eventually(() => probe.messages.length === 1, 3000, 'the message')
      expect(probe.texts()).toEqual(['first'])
      expect(probe.statuses).toEqual([])
    })

    it('delivers to every subscriber on every node, the publisher included, once each', async () => {
      const nodes = [node(), node(), node()]
      const ch = channel()
      const probes = await Promise.all(nodes.map((bus) => new Probe().subscribe(bus, ch)))
      const second = await new Probe().subscribe(nodes[1]!, ch)
      await nodes[0]!.publish(ch, Buffer.from('hello'))
      await eventually(
        () => [...probes, second].every((probe) => probe.messages.length >= 1),
        3000,
        'every delivery',
      )
      await sleep(50)
      for (const probe of [...probes, second]) expect(probe.texts()).toEqual(['hello'])
    })

    it('delivers binary payloads intact', async () => {
      const [a, b] = [node(), node()]
      const ch = channel()
      const probe = await new Probe().subscribe(a, ch)
      const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i)
      const payloads = [
        new Uint8Array([0x00]),
        new Uint8Array([0xc3, 0x28, 0xff, 0xfe, 0x00, 0x80]),
        allBytes,
        allBytes.subarray(10, 20),
        randomBytes(64 * 1024),
        new Uint8Array([]),
      ]
      for (const payload of payloads) await b.publish(ch, payload)
      await eventually(() => probe.messages.length === payloads.length, 3000, 'every payload')
      probe.messages.forEach((message, i) => {
        expect(message.equals(Buffer.from(payloads[i]!))).toBe(true)
      })
    })

    it('keeps the order of one publisher on one channel', async () => {
      const [a, b] = [node(), node()]
      const ch = channel()
      const probe = await new Probe().subscribe(a, ch)
      const sent = Array.from({ length: 100 }, (_, i) => `m${i}`)
      await Promise.all(sent.map((text) => b.publish(ch, Buffer.from(text))))
      await eventually(() => probe.messages.length === sent.length, 3000, 'every message')
      expect(probe.texts()).toEqual(sent)
    })

    it('keeps channels apart', async () => {
      const [a, b] = [node(), node()]
      const [one, two] = [channel('one'), channel('two')]
      const probeOne = await new Probe().subscribe(a, one)
      const probeTwo = await new Probe().subscribe(a, two)
      await b.publish(one, Buffer.from('for one'))
      await b.publish(two, Buffer.from('for two'))
      await eventually(() => probeOne.messages.length + probeTwo.messages.length === 2, 3000, 'both messages')
      expect(probeOne.texts()).toEqual(['for one'])
      expect(probeTwo.texts()).toEqual(['for two'])
    })

    it('stops delivery to a subscriber that unsubscribed, and only to it', async () => {
      const [a, b] = [node(), node()]
      const ch = channel()
      const leaving = await new Probe().subscribe(a, ch)
      const staying = await new Probe().subscribe(a, ch)
      const elsewhere = await new Probe().subscribe(b, ch)
      await leaving.subscription!.unsubscribe()
      await leaving.subscription!.unsubscribe()
      await b.publish(ch, Buffer.from('after'))
      await eventually(
        () => staying.messages.length === 1 && elsewhere.messages.length === 1,
        3000,
        'delivery',
      )
      await sleep(50)
      expect(leaving.messages).toEqual([])
      await staying.subscription!.unsubscribe()
      await elsewhere.subscription!.unsubscribe()
      await b.publish(ch, Buffer.from('nobody'))
      await sleep(50)
      expect(staying.texts()).toEqual(['after'])
      expect(elsewhere.texts()).toEqual(['after'])
      // subscribing again after everyone left works
      const back = await new Probe().subscribe(a, ch)
      await b.publish(ch, Buffer.from('back'))
      await eventually(() => back.messages.length === 1, 3000, 'delivery after resubscribing')
    })

    it('stops delivery and resolves on close()', async () => {
      const a = factory()
      const b = node()
      const ch = channel()
      const probe = await new Probe().subscribe(a, ch)
      await a.close()
      await a.close()
      await b.publish(ch, Buffer.from('after close'))
      await sleep(50)
      expect(probe.messages).toEqual([])
    })

    if (options.killSubscribers) {
      const killSubscribers = options.killSubscribers
      it('reports disconnected, then connected once resubscribed, when subscriber connections drop', async () => {
        const [a, b] = [node(), node()]
        const [one, two] = [channel('one'), channel('two')]
        const probes = [
          await new Probe().subscribe(a, one),
          await new Probe().subscribe(a, two),
          await new Probe().subscribe(b, one),
        ]
        // At the moment 'connected' is reported the subscription must already be live on the server:
        // a message published from inside the callback has to arrive.
        const publishedOnConnect: Promise<void>[] = []
        probes[0]!.onStatusHook = (status) => {
          if (status === 'connected') publishedOnConnect.push(b.publish(one, Buffer.from('on connected')))
        }
        expect(await killSubscribers()).toBeGreaterThan(0)
        await eventually(
          () => probes.every((probe) => probe.statuses.join() === 'disconnected,connected'),
          5000,
          'disconnected then connected on every subscriber',
        )
        await Promise.all(publishedOnConnect)
        await eventually(
          () => probes[0]!.texts().includes('on connected'),
          3000,
          'the message sent on connected',
        )
        await b.publish(two, Buffer.from('flows again'))
        await eventually(
          () => probes[1]!.texts().includes('flows again'),
          3000,
          'delivery after resubscribing',
        )
        expect(probes.map((probe) => probe.statuses)).toEqual(probes.map(() => ['disconnected', 'connected']))
      })

      it('survives repeated drops', async () => {
        const [a, b] = [node(), node()]
        const ch = channel()
        const probe = await new Probe().subscribe(a, ch)
        for (let round = 1; round <= 3; round++) {
          await killSubscribers()
          await eventually(() => probe.statuses.length === round * 2, 5000, `round ${round} to recover`)
        }
        expect(probe.statuses).toEqual([
          'disconnected',
          'connected',
          'disconnected',
          'connected',
          'disconnected',
          'connected',
        ])
        await b.publish(ch, Buffer.from('still here'))
        await eventually(() => probe.texts().includes('still here'), 3000, 'delivery')
      })
    }

    if (options.dedicated) {
      const dedicated = options.dedicated
      let server: DedicatedBusServer | undefined
      afterAll(async () => {
        await server?.stop()
      })

      it('reports a server restart and delivers again once resubscribed', async () => {
        server ??= await dedicated()
        const [a, b] = [server.factory(), server.factory()]
        open.push(a, b)
        const ch = channel()
        const probes = [await new Probe().subscribe(a, ch), await new Probe().subscribe(b, ch)]
        const restarted = server.restart(300)
        await eventually(
          () => probes.every((probe) => probe.statuses[0] === 'disconnected'),
          2000,
          'disconnected to be reported while the server is down',
        )
        expect(probes.every((probe) => probe.statuses.length === 1)).toBe(true)
        await restarted
        await eventually(
          () => probes.every((probe) => probe.statuses.join() === 'disconnected,connected'),
          server.recoveryMs ?? 5000,
          'connected after the restart',
        )
        // The publisher's own connection may still be reconnecting: publish rejects then, and is retried.
        await publishEventually(a, ch, 'after restart')
        await eventually(
          () => probes.every((probe) => probe.texts().includes('after restart')),
          3000,
          'delivery',
        )
      })

      it('rejects publish while the server is down, and publishes again once it is back', async () => {
        server ??= await dedicated()
        const [a, b] = [server.factory(), server.factory()]
        open.push(a, b)
        const ch = channel()
        const probe = await new Probe().subscribe(b, ch)
        await a.publish(ch, Buffer.from('before'))
        const restarted = server.restart(500)
        await eventually(() => probe.statuses.length === 1, 2000, 'the outage')
        await expect(a.publish(ch, Buffer.from('during'))).rejects.toThrow()
        await restarted
        await eventually(() => probe.statuses.length === 2, server.recoveryMs ?? 5000, 'the recovery')
        await publishEventually(a, ch, 'after')
        await eventually(() => probe.texts().includes('after'), 3000, 'delivery')
        expect(probe.texts()).not.toContain('during')
      })
    }
  })
}
