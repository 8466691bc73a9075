/** Waiting with a bound, for the parts of the cache that talk to something that may not answer. */

/** Resolves after `ms`; the timer does not keep the process alive. */
export function unrefSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/**
 * `promise`, or the error `timedOut()` makes if it has not settled within `ms`. The timer does not keep
 * the process alive, and is cleared as soon as `promise` settles.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timedOut()), ms)
    timer.unref()
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}

/** How waiting for a promise with within() ended. */
export type Outcome<T> =
  | { status: 'done'; value: T }
  | { status: 'failed'; error: unknown }
  | { status: 'timeout' }

/** Waits for `promise` at most `ms` (0: not at all, Infinity: forever); it keeps running either way. */
export function within<T>(promise: Promise<T>, ms: number): Promise<Outcome<T>> {
  promise.catch(() => {})
  if (ms <= 0) return Promise.resolve({ status: 'timeout' })
  const settled = promise.then(
    (value): Outcome<T> => ({ status: 'done', value }),
    (error): Outcome<T> => ({ status: 'failed', error }),
  )
  if (ms === Number.POSITIVE_INFINITY) return settled
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ status: 'timeout' }), ms)
    settled.then((outcome) => {
      clearTimeout(timer)
      resolve(outcome)
    })
  })
}
