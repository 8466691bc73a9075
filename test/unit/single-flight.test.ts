import { describe, expect, it } from 'vitest'
import { SingleFlight } from '../../src/stampede/single-flight.js'
import { deferred } from '../support/deferred.js'

describe('SingleFlight', () => {
  it('runs one execution per key; callers that arrive while it runs share its outcome', async () => {
    const flights = new SingleFlight<string>()
    const gate = deferred<string>()
    let runs = 0
    const execute = () => {
      runs++
      return gate.promise
    }
    const callers = [flights.run('k', execute), flights.run('k', execute), flights.run('k', execute)]
    const other = flights.run('other', async () => 'other')
    expect(runs).toBe(1)
    expect(flights.coalesced).toBe(2)
    gate.resolve('v')
    expect(await Promise.all(callers)).toEqual(['v', 'v', 'v'])
    expect(await other).toBe('other')
  })

  it('a failure is shared by everyone who joined, and not remembered', async () => {
    const flights = new SingleFlight<string>()
    const gate = deferred<string>()
    const a = flights.run('k', () => gate.promise)
    const b = flights.run('k', () => Promise.resolve('never'))
    gate.reject(new Error('boom'))
    await expect(a).rejects.toThrow('boom')
    await expect(b).rejects.toThrow('boom')
    expect(await flights.run('k', async () => 'again')).toBe('again')
  })

  it('after it resolves, new callers share its outcome until holdWhile settles', async () => {
    const flights = new SingleFlight<string>()
    const landing = deferred<void>()
    let runs = 0
    const first = await flights.run(
      'k',
      async () => {
        runs++
        return 'loaded'
      },
      () => landing.promise,
    )
    expect(first).toBe('loaded')
    expect(flights.has('k')).toBe(true)
    expect(await flights.run('k', async () => 'second')).toBe('loaded')
    expect(runs).toBe(1)
    landing.resolve()
    await landing.promise
    await Promise.resolve()
    expect(flights.has('k')).toBe(false)
    expect(await flights.run('k', async () => 'second')).toBe('second')
  })

  it('a held outcome whose hold fails is forgotten too', async () => {
    const flights = new SingleFlight<string>()
    const landing = deferred<void>()
    await flights.run(
      'k',
      async () => 'loaded',
      () => landing.promise,
    )
    landing.reject(new Error('write failed'))
    await landing.promise.catch(() => {})
    await Promise.resolve()
    expect(flights.has('k')).toBe(false)
  })

  it('an execution that finishes never forgets the one that replaced it (an execute that starts another)', async () => {
    const flights = new SingleFlight<string>()
    const outer = deferred<string>()
    const inner = deferred<string>()
    let nested: Promise<string> | undefined
    const first = flights.run('k', () => {
      // The loader runs the same key through the flight before its own execution is registered.
      nested = flights.run('k', () => inner.promise)
      return outer.promise
    })
    inner.resolve('inner')
    expect(await nested).toBe('inner')
    // The outer execution is the one in flight now: a new caller joins it.
    const joined = flights.run('k', async () => 'new')
    expect(flights.has('k')).toBe(true)
    outer.resolve('outer')
    expect(await first).toBe('outer')
    expect(await joined).toBe('outer')
  })
})
