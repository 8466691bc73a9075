import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type Outcome, unrefSleep, within, withTimeout } from '../../src/timeouts.js'
import { deferred } from '../support/deferred.js'

/** Whether `promise` has settled, after letting pending callbacks run. */
async function state<T>(promise: Promise<T>): Promise<'pending' | { value: T } | { error: unknown }> {
  let result: 'pending' | { value: T } | { error: unknown } = 'pending'
  promise.then(
    (value) => {
      result = { value }
    },
    (error) => {
      result = { error }
    },
  )
  await vi.advanceTimersByTimeAsync(0)
  return result
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.restoreAllMocks()
  vi.useRealTimers()
})

describe('unrefSleep', () => {
  it('resolves after ms, not before, with a timer that does not hold the process', async () => {
    const unref = vi.spyOn(globalThis, 'setTimeout')
    const sleep = unrefSleep(100)
    const timer = unref.mock.results[0]!.value as NodeJS.Timeout
    expect(timer.hasRef()).toBe(false)
    await vi.advanceTimersByTimeAsync(99)
    expect(await state(sleep)).toBe('pending')
    await vi.advanceTimersByTimeAsync(1)
    expect(await state(sleep)).toEqual({ value: undefined })
  })
})

describe('withTimeout', () => {
  it('resolves with the value if the promise settles in time, and clears its timer', async () => {
    const work = deferred<string>()
    const bounded = withTimeout(work.promise, 100, () => new Error('late'))
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(50)
    work.resolve('done')
    expect(await state(bounded)).toEqual({ value: 'done' })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('rejects with the promise error if it fails in time, and clears its timer', async () => {
    const work = deferred<string>()
    const bounded = withTimeout(work.promise, 100, () => new Error('late'))
    const failure = new Error('failed')
    work.reject(failure)
    expect(await state(bounded)).toEqual({ error: failure })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('rejects with the timedOut() error once ms pass, with a timer that does not hold the process', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout')
    const work = deferred<string>()
    const bounded = withTimeout(work.promise, 100, () => new Error('late'))
    expect((spy.mock.results[0]!.value as NodeJS.Timeout).hasRef()).toBe(false)
    await vi.advanceTimersByTimeAsync(99)
    expect(await state(bounded)).toBe('pending')
    await vi.advanceTimersByTimeAsync(1)
    const settled = await state(bounded)
    expect(settled).toMatchObject({ error: { message: 'late' } })
    work.resolve('too late') // settling afterwards changes nothing
    expect(await state(bounded)).toEqual(settled)
  })
})

describe('within', () => {
  it('ms <= 0: a timeout at once, without waiting, and the promise rejection is handled', async () => {
    const work = deferred<string>()
    const now = within(work.promise, 0)
    expect(vi.getTimerCount()).toBe(0)
    expect(await state(now)).toEqual({ value: { status: 'timeout' } })
    expect(await state(within(work.promise, -5))).toEqual({ value: { status: 'timeout' } })
    work.reject(new Error('ignored')) // no unhandled rejection
    await vi.advanceTimersByTimeAsync(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a value or an error within ms is reported as done or failed, and the timer is cleared', async () => {
    const ok = deferred<number>()
    const done = within(ok.promise, 100)
    await vi.advanceTimersByTimeAsync(99)
    ok.resolve(7)
    expect(await state(done)).toEqual({ value: { status: 'done', value: 7 } satisfies Outcome<number> })
    const bad = deferred<number>()
    const failure = new Error('nope')
    const failed = within(bad.promise, 100)
    bad.reject(failure)
    expect(await state(failed)).toEqual({ value: { status: 'failed', error: failure } })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('reports a timeout after ms if the promise has not settled, not before', async () => {
    const work = deferred<number>()
    const bounded = within(work.promise, 100)
    await vi.advanceTimersByTimeAsync(99)
    expect(await state(bounded)).toBe('pending')
    await vi.advanceTimersByTimeAsync(1)
    expect(await state(bounded)).toEqual({ value: { status: 'timeout' } })
    work.resolve(1)
    expect(await state(bounded)).toEqual({ value: { status: 'timeout' } })
  })

  it('Infinity waits for the promise however long it takes, with no timer', async () => {
    const work = deferred<number>()
    const bounded = within(work.promise, Number.POSITIVE_INFINITY)
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(1e9)
    expect(await state(bounded)).toBe('pending')
    work.resolve(3)
    expect(await state(bounded)).toEqual({ value: { status: 'done', value: 3 } })
  })
})
