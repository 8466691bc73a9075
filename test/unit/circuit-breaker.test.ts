/**
 * CircuitBreaker edge cases that the state-machine tests in test/circuit-breaker.test.ts do not reach:
 * calls that were admitted before the circuit changed state and finish after it did (found by mutation
 * testing, issue 16).
 */
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/clock.js'
import {
  Admission,
  CircuitBreaker,
  CircuitOpenError,
  type CircuitState,
} from '../../src/remote/circuit-breaker.js'
import { deferred } from '../support/deferred.js'

function breaker(failureThreshold = 2, openMs = 1000) {
  const clock = new ManualClock()
  const changes: CircuitState[] = []
  const cb = new CircuitBreaker('l2', { failureThreshold, openMs }, clock, (state) => changes.push(state))
  return { clock, changes, cb }
}

const boom = () => Promise.reject(new Error('boom'))

async function fail(cb: CircuitBreaker, times: number) {
  for (let i = 0; i < times; i++) await expect(cb.run(boom)).rejects.toThrow('boom')
}

describe('CircuitBreaker admission', () => {
  it('admits plain calls (not probes) while closed', () => {
    const { cb } = breaker()
    expect(cb.admit()).toBe(Admission.Call)
    expect(cb.admit()).toBe(Admission.Call)
  })

  it('admits one probe when half-open, then refuses until its outcome is recorded', () => {
    const { cb } = breaker(1)
    cb.record(cb.admit(), false)
    expect(cb.state).toBe('open')
    expect(cb.admit()).toBe(Admission.Refused)
    cb.probeNow()
    expect(cb.admit()).toBe(Admission.Probe)
    expect(cb.admit()).toBe(Admission.Refused)
    cb.record(Admission.Probe, true)
    expect(cb.state).toBe('closed')
    expect(cb.admit()).toBe(Admission.Call)
  })

  it('the open-circuit error names the connection', async () => {
    const { cb } = breaker(1)
    await fail(cb, 1)
    const error = await cb.run(boom).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(CircuitOpenError)
    expect((error as Error).message).toContain('l2: circuit open')
  })
})

describe('CircuitBreaker: calls that finish after the state changed', () => {
  it('a plain call that fails while a probe is in flight does not free the probe slot', async () => {
    const { cb, clock } = breaker(2, 1000)
    const late = deferred<string>()
    const lateCall = cb.run(() => late.promise) // admitted while closed
    await fail(cb, 2)
    expect(cb.state).toBe('open')
    clock.advance(1000)
    const probe = deferred<string>()
    const probeCall = cb.run(() => probe.promise)
    expect(cb.state).toBe('half-open')
    late.reject(new Error('late'))
    await expect(lateCall).rejects.toThrow('late')
    expect(cb.state).toBe('open') // a failure while half-open opens again
    clock.advance(1000)
    // The probe is still in flight: no second probe, even though openMs has passed again.
    expect(cb.allow()).toBe(false)
    probe.resolve('back')
    expect(await probeCall).toBe('back')
    expect(cb.state).toBe('closed')
  })

  it('once a late plain call closes the circuit, calls go through although the probe is still in flight', async () => {
    const { cb, clock } = breaker(2, 1000)
    const late = deferred<string>()
    const lateCall = cb.run(() => late.promise)
    await fail(cb, 2)
    clock.advance(1000)
    const probe = deferred<string>()
    const probeCall = cb.run(() => probe.promise)
    late.resolve('late')
    expect(await lateCall).toBe('late')
    expect(cb.state).toBe('closed')
    expect(cb.allow()).toBe(true)
    expect(await cb.run(() => Promise.resolve('next'))).toBe('next')
    probe.resolve('probe')
    await probeCall
  })

  it('a late failure while open neither counts as another opening nor restarts openMs', async () => {
    const { cb, clock, changes } = breaker(2, 1000)
    const late = deferred<string>()
    const lateCall = cb.run(() => late.promise)
    await fail(cb, 2)
    expect(cb.opened).toBe(1)
    clock.advance(600)
    late.reject(new Error('late'))
    await expect(lateCall).rejects.toThrow('late')
    expect(cb.state).toBe('open')
    expect(cb.opened).toBe(1)
    expect(changes).toEqual(['open'])
    clock.advance(400) // openMs after the first opening, not after the late failure
    expect(cb.allow()).toBe(true)
    expect(cb.state).toBe('half-open')
  })
})
