import diagnosticsChannel from 'node:diagnostics_channel'

/**
 * Events on node:diagnostics_channel. Subscribing costs nothing when nobody listens (`hasSubscribers`
 * is checked before a message is built).
 *
 * - `coherent-cache:circuit`  { namespace, target: 'l2' | 'bus', state: 'closed' | 'open' | 'half-open' }
 * - `coherent-cache:bus`      { namespace, status: 'connected' | 'disconnected' }
 * - `coherent-cache:write-behind`
 *     { namespace, event: 'retry', key, keyNamespace, attempt, delayMs, error }: a write failed and waits
 *     { namespace, event: 'dead-letter', key, keyNamespace, attempts, error, id }: moved to the dead letters
 */
export const circuitChannel = diagnosticsChannel.channel('coherent-cache:circuit')
export const busChannel = diagnosticsChannel.channel('coherent-cache:bus')
export const writeBehindChannel = diagnosticsChannel.channel('coherent-cache:write-behind')
