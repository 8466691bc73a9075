/**
 * Every name the cache gives to something outside one process lives here: the L2 keys of entries,
 * stamps and leases, the bus channel, the names of stamps (`n:<namespace path>` for a namespace's
 * clear(), `t:<tag>` for a tag), and the ids under which outage work is queued. Nothing else in src/
 * spells a prefix out, so a change of layout is a change of this file.
 *
 *   <namespace>:<rel>          an entry (rel: the key relative to the root namespace, see relKey)
 *   <namespace>#<stamp name>   a stamp: a generation counter bumped by invalidateTags / clear
 *   <namespace>#lease:<rel>    a lease of lock: 'distributed'
 *   <namespace>#wb:{<namespace>:wb:<p>}        write-behind partition p: its stream (Redis Stream)
 *   <namespace>#wb-dead:{<namespace>:wb:<p>}   its dead letters (a stream)
 *   <namespace>#wb-lease:{<namespace>:wb:<p>}  the lease of the node consuming it
 *                              (the braces are a Redis Cluster hash tag: a partition's keys share a
 *                              shard, and partitions spread over the shards)
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

  /** The keys of write-behind partition `p`. */
  writeBehind(p: number): { stream: string; dead: string; lease: string } {
    const tag = `{${this.namespace}:wb:${p}}`
    return {
      stream: `${this.namespace}#wb:${tag}`,
      dead: `${this.namespace}#wb-dead:${tag}`,
      lease: `${this.namespace}#wb-lease:${tag}`,
    }
  }
}

/** What a namespace knows about itself: its path and the stamps that apply to its entries. */
export interface NamespaceState {
  /** '' for the root, 'users' or 'users:admins' for children. */
  readonly path: string
  /** Prefix of its keys relative to the root: '' for the root, else NAMESPACE_MARK + path + NAMESPACE_MARK. */
  readonly prefix: string
  /** The stamps of the root, each ancestor and itself: a clear() of any of them invalidates its entries. */
  readonly stampKeys: readonly string[]
}

/**
 * Keys of child namespaces start with this character, which namespace names cannot contain, and so do
 * root keys that begin with it (escaped by doubling it), so that no two (namespace, key) pairs share a
 * name: `cache.set('users:1')` and `cache.namespace('users').set('1')` are different entries.
 *
 *   root key k, k[0] !== MARK         k
 *   root key k, k[0] === MARK         MARK + k               (second character MARK)
 *   key k of namespace path p         MARK + p + MARK + k    (second character a letter, digit, _ . -)
 */
const NAMESPACE_MARK = '\u0001'
/** How deep namespaces may nest (namespace('a').namespace('b')...): bounds every entry's stamp chain. */
export const MAX_NAMESPACE_DEPTH = 32

/** The name of `key` of namespace `ns` relative to the root: what L1, L2 keys and the bus use. */
export function relKey(ns: NamespaceState, key: string): string {
  if (ns.prefix !== '') return ns.prefix + key
  return key.charCodeAt(0) === 1 ? NAMESPACE_MARK + key : key
}

/** The inverse of relKey: the namespace path and the caller's key (for events and logs). */
export function splitRel(rel: string): { path: string; key: string } {
  if (rel.charCodeAt(0) !== 1) return { path: '', key: rel }
  if (rel.charCodeAt(1) === 1) return { path: '', key: rel.slice(1) }
  const end = rel.indexOf(NAMESPACE_MARK, 1)
  return end === -1 ? { path: '', key: rel } : { path: rel.slice(1, end), key: rel.slice(end + 1) }
}

export const ROOT_NAMESPACE: NamespaceState = { path: '', prefix: '', stampKeys: [ROOT_STAMP] }

/** The state of the namespace at `path` ('' is the root). Made afresh: nothing remembers paths. */
export function namespaceAt(path: string): NamespaceState {
  if (path === '') return ROOT_NAMESPACE
  return { path, prefix: `${NAMESPACE_MARK}${path}${NAMESPACE_MARK}`, stampKeys: namespaceChain(path) }
}

/**
 * The stamps an entry of namespace `ns` with `tags` is judged by: the namespace chain, then the tags'
 * stamps, in an array of exactly that length (an L1 entry keeps it, and a spread, [...a, ...b], leaves
 * room for growth that cost ~200 bytes per tagged entry).
 */
export function entryStampKeys(ns: NamespaceState, tags: readonly string[]): string[] {
  const chain = ns.stampKeys
  const keys = new Array<string>(chain.length + tags.length)
  for (let i = 0; i < chain.length; i++) keys[i] = chain[i]!
  for (let i = 0; i < tags.length; i++) keys[chain.length + i] = tagStamp(tags[i]!)
  return keys
}

/** The path of a child `name` of `parent`. */
export function childPath(parent: NamespaceState, name: string): string {
  return parent.path === '' ? name : `${parent.path}:${name}`
}

/** The stamps that apply to an entry of the namespace at `path`: the root's, each ancestor's, its own. */
export function namespaceChain(path: string): string[] {
  const chain = [ROOT_STAMP]
  if (path === '') return chain
  let at = path.indexOf(':')
  while (at !== -1) {
    chain.push(namespaceStamp(path.slice(0, at)))
    at = path.indexOf(':', at + 1)
  }
  chain.push(namespaceStamp(path))
  return chain
}
