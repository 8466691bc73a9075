import diagnosticsChannel from 'node:diagnostics_channel'

/**
 * Events on node:diagnostics_channel. Subscribing costs nothing when nobody listens (`hasSubscribers`
 * is checked before a message is built).
 *
 * - `coherent-cache:circuit`  { namespace, target: 'l2' | 'bus', state: 'closed' | 'open' | 'half-open' }
 * - `coherent-cache:bus`      { namespace, status: 'connected' | 'disconnected' }
 */
export const circuitChannel = diagnosticsChannel.channel('coherent-cache:circuit')
export const busChannel = diagnosticsChannel.channel('coherent-cache:bus')
