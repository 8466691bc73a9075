/**
 * In-process single flight: at most one execution per key at a time; callers that arrive while it runs
 * share its outcome. A map of in-flight promises is the whole mechanism (as in async-cache-dedupe).
 * Failures are shared too and not remembered: the next call after a failure starts a new execution.
 *
 * An execution may resolve before its side effects are done (a load answers its callers before its L2
 * write lands): `holdWhile` returns what to wait for, and callers arriving until then still share the
 * resolved outcome instead of starting a second execution.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>()
  /** Callers that joined an execution started by someone else. */
  coalesced = 0

  run(
    key: string,
    execute: () => Promise<T>,
    holdWhile?: (value: T) => Promise<unknown> | undefined,
  ): Promise<T> {
    const running = this.inFlight.get(key)
    if (running !== undefined) {
      this.coalesced++
      return running
    }
    const promise = execute()
    this.inFlight.set(key, promise)
    const forget = () => {
      if (this.inFlight.get(key) === promise) this.inFlight.delete(key)
    }
    promise.then((value) => {
      const hold = holdWhile?.(value)
      if (hold === undefined) forget()
      else hold.then(forget, forget)
    }, forget)
    return promise
  }

  has(key: string): boolean {
    return this.inFlight.has(key)
  }
}
