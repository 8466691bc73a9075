import type { Clock } from '../clock.js'
import { CoherentError } from '../errors.js'

/**
 * A circuit breaker for one connection (the L2 store, or the bus). When Redis is down, waiting for a
 * timeout on every call would make every cache call slow; once `failureThreshold` calls in a row have
 * failed, the circuit opens and calls fail at once, without touching the connection, for `openMs`. Then
 * one call is let through (half-open): if it succeeds the circuit closes, if it fails it opens again.
 *
 *   closed --(threshold consecutive failures)--> open --(openMs elapsed)--> half-open
 *   half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open
 */
export type CircuitState = 'closed' | 'open' | 'half-open'

/** A call was not attempted because the circuit is open. */
export class CircuitOpenError extends CoherentError {
  constructor(name: string) {
    super(
      'E_CIRCUIT_OPEN',
      `${name}: circuit open after repeated failures; not calling it until the next probe`,
    )
  }
}

export enum Admission {
  Refused = 0,
  Call = 1,
  /** The one call let through in half-open state; its outcome decides the state. */
  Probe = 2,
}

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. @default 5 */
  failureThreshold: number
  /** How long the circuit stays open before a probe. @default 2000 */
  openMs: number
}

export class CircuitBreaker {
  state: CircuitState = 'closed'
  /** How many times the circuit opened. */
  opened = 0
  private failures = 0
  private openedAt = 0
  private probing = false

  constructor(
    readonly name: string,
    private readonly options: CircuitBreakerOptions,
    private readonly clock: Clock,
    private readonly onChange: (state: CircuitState) => void,
  ) {}

  /** Runs `call` unless the circuit is open; records its outcome. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    const admission = this.admit()
    if (admission === Admission.Refused) throw new CircuitOpenError(this.name)
    try {
      const result = await call()
      this.record(admission, true)
      return result
    } catch (err) {
      this.record(admission, false)
      throw err
    }
  }

  /**
   * Before a call: Refused if it must not be made (open, or half-open with its probe in flight);
   * otherwise the call goes ahead and its outcome must be passed to record() with this admission.
   */
  admit(): Admission {
    if (!this.allow()) return Admission.Refused
    if (this.state !== 'half-open') return Admission.Call
    this.probing = true
    return Admission.Probe
  }

  /** The outcome of a call that admit() let through. */
  record(admission: Admission, ok: boolean): void {
    if (admission === Admission.Probe) this.probing = false
    if (ok) this.succeeded()
    else this.failed()
  }

  /** True if a call may go through now (closed, or half-open with no probe in flight). */
  allow(): boolean {
    if (this.state === 'closed') return true
    if (this.state === 'open') {
      if (this.clock.now() - this.openedAt < this.options.openMs) return false
      this.transition('half-open')
    }
    return !this.probing
  }

  /**
   * The connection says it is back: stop waiting out openMs and let the next call probe it now. Without
   * this, the first call to reach a recovered Redis would come up to openMs after it recovered.
   */
  probeNow(): void {
    if (this.state === 'open') this.transition('half-open')
  }

  succeeded(): void {
    this.failures = 0
    if (this.state !== 'closed') this.transition('closed')
  }

  failed(): void {
    this.failures++
    if (
      this.state === 'half-open' ||
      (this.state === 'closed' && this.failures >= this.options.failureThreshold)
    ) {
      this.openedAt = this.clock.now()
      this.opened++
      this.transition('open')
    }
  }

  private transition(state: CircuitState): void {
    this.state = state
    this.onChange(state)
  }
}
