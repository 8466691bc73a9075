/**
 * Every name the cache gives to something outside one process lives here: the L2 keys of entries,
 * stamps and leases, the bus channel, the names of stamps (`n:<namespace path>` for a namespace's
 * clear(), `t:<tag>` for a tag), and the ids under which outage work is queued. Nothing else in src/
 * spells a prefix out, so a change of layout is a change of this file.
 *
 *   <namespace>:<rel>          an entry (rel: the key relative to the root namespace, see Namespaces)
 *   <namespace>#<stamp name>   a stamp: a generation counter bumped by invalidateTags / clear
 *   <namespace>#lease:<rel>    a lease of lock: 'distributed'
 *   coherent:<namespace>       the bus channel of the root namespace and all its children
 */

/** The stamp of the root namespace: a root clear() bumps it, and every entry depends on it. */
export const ROOT_STAMP = 'n:'

/** The stamp a clear() of the namespace at `path` bumps ('' is the root). */
export function namespaceStamp(path: string): string {
  return `n:${path}`
}

/** The stamp invalidateTags([tag]) bumps. */
export function tagStamp(tag: string): string {
  return `t:${tag}`
}

export function isNamespaceStamp(stamp: string): boolean {
  return stamp.startsWith('n:')
}

/** The outage-queue id of work on one key: a newer write of the key replaces older queued work. */
export function keyWorkId(rel: string): string {
  return `k:${rel}`
}

/** The outage-queue id of a stamp bump (or its announcement). */
export function stampWorkId(stamps: readonly string[]): string {
  return `s:${stamps.join('\u0000')}`
}

/** L2 keys and the bus channel of one cache (all its namespaces share them). */
export class KeyNames {
  readonly channel: string

  constructor(readonly namespace: string) {
    this.channel = `coherent:${namespace}`
  }

  entry(rel: string): string {
    return `${this.namespace}:${rel}`
  }

  stamp(stamp: string): string {
    return `${this.namespace}#${stamp}`
  }

  lease(rel: string): string {
    return `${this.namespace}#lease:${rel}`
  }
}

/** What a namespace knows about itself: its path and the stamps that apply to its entries. */
export interface NamespaceState {
  /** '' for the root, 'users' or 'users:admins' for children. */
  readonly path: string
  /** Prefix of its keys relative to the root: '' or 'users:'. */
  readonly prefix: string
  /** The stamps of the root, each ancestor and itself: a clear() of any of them invalidates its entries. */
  readonly stampKeys: readonly string[]
}

/** The namespaces of one cache by path, each made once. */
export class Namespaces {
  readonly root: NamespaceState = { path: '', prefix: '', stampKeys: [ROOT_STAMP] }
  private readonly byPath = new Map<string, NamespaceState>([['', this.root]])

  get(path: string): NamespaceState {
    let ns = this.byPath.get(path)
    if (ns === undefined) {
      const parts = path.split(':')
      const stampKeys = [ROOT_STAMP]
      for (let i = 1; i <= parts.length; i++) stampKeys.push(namespaceStamp(parts.slice(0, i).join(':')))
      ns = { path, prefix: `${path}:`, stampKeys }
      this.byPath.set(path, ns)
    }
    return ns
  }

  /** The path of a child `name` of `parent`. */
  static childPath(parent: NamespaceState, name: string): string {
    return parent.path === '' ? name : `${parent.path}:${name}`
  }
}
