import diagnosticsChannel from 'node:diagnostics_channel'

/**
 * Events on node:diagnostics_channel, for tracing and logging. A message is built only when its channel
 * has subscribers (`hasSubscribers`, checked at every publishing site), so without subscribers they cost
 * a property read (bench:l1 has a row with a subscriber and one without). Keys appear in events, never
 * in metrics (exporters label by namespace, tier and outcome only). `key` is the caller's key and `path`
 * its namespace below the root ('' for the root).
 *
 * - `coherent-cache:hit`           { namespace, path, key, tier: 'l1' | 'l2' }
 * - `coherent-cache:miss`          { namespace, path, key }
 * - `coherent-cache:set`           { namespace, path, key, version, queued }  (queued: Redis did not take it yet)
 * - `coherent-cache:delete`        { namespace, path, key }
 * - `coherent-cache:invalidation`  { namespace, kind: 'keys' | 'stamps', names, lagMs }  (from another node)
 * - `coherent-cache:load`          { namespace, path, key, ms, outcome: 'value' | 'undefined' | 'error', error? }
 * - `coherent-cache:stale`         { namespace, path, key, reason: 'grace' | 'fail-safe' | 'l2-unavailable' }
 * - `coherent-cache:circuit`       { namespace, target: 'l2' | 'bus', state: 'closed' | 'open' | 'half-open' }
 * - `coherent-cache:bus`           { namespace, status: 'connected' | 'disconnected' }
 * - `coherent-cache:write-behind`
 *     { namespace, event: 'retry', key, keyNamespace, attempt, delayMs, error }: a write failed and waits
 *     { namespace, event: 'dead-letter', key, keyNamespace, attempts, error, id }: moved to the dead letters
 */
export const hitChannel = diagnosticsChannel.channel('coherent-cache:hit')
export const missChannel = diagnosticsChannel.channel('coherent-cache:miss')
export const setChannel = diagnosticsChannel.channel('coherent-cache:set')
export const deleteChannel = diagnosticsChannel.channel('coherent-cache:delete')
export const invalidationChannel = diagnosticsChannel.channel('coherent-cache:invalidation')
export const loadChannel = diagnosticsChannel.channel('coherent-cache:load')
export const staleChannel = diagnosticsChannel.channel('coherent-cache:stale')
export const circuitChannel = diagnosticsChannel.channel('coherent-cache:circuit')
export const busChannel = diagnosticsChannel.channel('coherent-cache:bus')
export const writeBehindChannel = diagnosticsChannel.channel('coherent-cache:write-behind')
