/**
 * Ordering assertions instead of absolute timings: "at once" and "does not hang" are asked of the event
 * loop and of a timer started with the call, not of Date.now() differences that a loaded machine stretches.
 */

/**
 * Whether `promise` settles before the event loop's next turn (a setImmediate scheduled now): it needed
 * no I/O and no timer, whatever the load.
 */
export async function settlesAtOnce(promise: Promise<unknown>): Promise<boolean> {
  let settled = false
  promise.then(
    () => {
      settled = true
    },
    () => {
      settled = true
    },
  )
  await new Promise((resolve) => setImmediate(resolve))
  return settled
}

/**
 * Which comes first: `promise` settling, or a timer of `ms` started now (as sharded-failover's
 * withinL2Timeout): e.g. a close() that must not wait for a connect attempt to time out.
 */
export async function settlesBeforeTimer(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  const settled = promise.then(
    () => true,
    () => true,
  )
  try {
    return await Promise.race([settled, late])
  } finally {
    clearTimeout(timer)
  }
}
