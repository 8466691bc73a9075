/**
 * In-process single flight: at most one execution per key at a time; callers that arrive while it runs
 * share its outcome. A map of in-flight promises is the whole mechanism (as in async-cache-dedupe).
 * Failures are shared too and not remembered: the next call after a failure starts a new execution.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>()
  /** Callers that joined an execution started by someone else. */
  coalesced = 0

  run(key: string, execute: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key)
    if (running !== undefined) {
      this.coalesced++
      return running
    }
    const promise = execute().finally(() => {
      this.inFlight.delete(key)
    })
    this.inFlight.set(key, promise)
    return promise
  }

  has(key: string): boolean {
    return this.inFlight.has(key)
  }

  get size(): number {
    return this.inFlight.size
  }
}
