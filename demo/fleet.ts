/**
 * The fleet as the demo sees it: a list of nodes, each with an address to send requests to and a report
 * of its own counters (see NodeReport in node/service.ts).
 *
 * fleetOf() is the one place the demo learns what every node is doing: the terminal view, the dashboard's
 * charts and its fleet table all read its answer. Today it asks each node in turn. The library's fleet
 * view (`cache.fleet()`: every live node's last heartbeat, carried over the bus) answers the same
 * question from any single node; with it, fleetOf asks one node for its `cache.fleet()` (a GET /_fleet
 * route on the node service) and maps each heartbeat to a NodeReport. Nothing else changes.
 */
import type { NodeReport } from './node/service.js'

export interface DemoNode {
  readonly id: string
  /** Where its HTTP service listens. */
  readonly url: string
  readonly pid: number
  /** What the node says about itself now. */
  report(): Promise<NodeReport>
  /** Stops its HTTP service and closes its cache (and, for a process of its own, ends the process). */
  close(): Promise<void>
}

/** What every node reports, in the order of `nodes`. */
export function fleetOf(nodes: readonly DemoNode[]): Promise<NodeReport[]> {
  return Promise.all(nodes.map((node) => node.report()))
}
