/**
 * Mutation isolation for the in-process tier: the cache keeps one copy of a value and hands each
 * caller its own, so a caller that mutates what it got cannot change what the next caller gets.
 *
 * `cloneValue` accepts exactly what `encode` accepts and is only given values that already passed
 * it, so it checks for neither cycles nor depth. Primitives (the common case for counters, flags,
 * strings and ids) are returned as they are, with no allocation. Containers are copied with a loop
 * per type:
 *  - a plain object by spread (which copies own enumerable properties in order, reads getters, and
 *    defines an own `__proto__` key as data); then only its object-valued own properties are replaced,
 *    walking the copy with for...in (which reads V8's enum cache; the own-property check, made only for
 *    object values, keeps keys inherited from a polluted Object.prototype out);
 *  - an array by `slice` (a memcpy that keeps holes), then likewise; a long array, which may be
 *    huge and sparse, is copied by its present indices instead;
 *  - Date, Map, Set, Buffer, Uint8Array and the other typed arrays into new ones of the same type.
 * Like `decode`, it does not preserve shared references: an object reachable twice is copied twice.
 */
import { UnserializableValueError } from '../errors.js'
import {
  K_ARRAY,
  K_BUFFER,
  K_DATE,
  K_MAP,
  K_NULL_OBJECT,
  K_OBJECT,
  K_SET,
  K_TYPED,
  K_UINT8ARRAY,
  K_UNSUPPORTED,
  kindOf,
  type OtherTypedArray,
  TYPED_ARRAYS,
} from './codec.js'

/** A deep copy of a value that passed `encode`: equal, of the same types, sharing nothing mutable. */
export function cloneValue<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value
  return cloneObject(value) as T
}

function cloneAny(v: unknown): unknown {
  return typeof v !== 'object' || v === null ? v : cloneObject(v)
}

function cloneObject(v: object): unknown {
  const kind = kindOf(Object.getPrototypeOf(v))
  switch (kind) {
    case K_OBJECT:
      return clonePlain({ ...(v as Record<string, unknown>) })
    case K_ARRAY:
      return cloneArray(v as unknown[])
    case K_NULL_OBJECT:
      return clonePlain(Object.assign(Object.create(null) as Record<string, unknown>, v))
    case K_DATE:
      return new Date((v as Date).getTime())
    case K_MAP: {
      const copy = new Map<unknown, unknown>()
      for (const [key, value] of v as Map<unknown, unknown>) copy.set(cloneAny(key), cloneAny(value))
      return copy
    }
    case K_SET: {
      const copy = new Set<unknown>()
      for (const value of v as Set<unknown>) copy.add(cloneAny(value))
      return copy
    }
    case K_BUFFER:
      return Buffer.from(v as Buffer)
    case K_UINT8ARRAY:
      return new Uint8Array(v as Uint8Array)
    case K_UNSUPPORTED:
      throw new UnserializableValueError('$', 'cloneValue was given a value that encode() would reject')
    default: {
      const Ctor = TYPED_ARRAYS[kind - K_TYPED]! as unknown as new (source: OtherTypedArray) => unknown
      return new Ctor(v as OtherTypedArray)
    }
  }
}

/** `copy` is already a shallow copy; replace its object-valued own properties with their copies. */
function clonePlain(copy: Record<string, unknown>): Record<string, unknown> {
  for (const key in copy) {
    const x = copy[key]
    if (typeof x === 'object' && x !== null && Object.hasOwn(copy, key)) copy[key] = cloneObject(x)
  }
  return copy
}

/** Above this length an array may be in V8's dictionary (sparse) mode, where slice() visits every index. */
const SLICE_MAX = 65536

function cloneArray(src: unknown[]): unknown[] {
  const n = src.length
  if (n > SLICE_MAX) return cloneLongArray(src)
  const copy = src.slice() // a memcpy that keeps holes
  for (let i = 0; i < n; i++) {
    const x = copy[i]
    if (typeof x === 'object' && x !== null) copy[i] = cloneObject(x)
  }
  return copy
}

function cloneLongArray(src: unknown[]): unknown[] {
  const n = src.length
  const copy: unknown[] = []
  for (let i = 0; i < n; i++) {
    const x = src[i]
    if (x === undefined && !(i in src)) {
      // A hole: the array may be huge and sparse, so visit only the indices that exist.
      for (const key of Object.keys(src)) {
        const j = Number(key)
        if (j > i && j < n && String(j) === key) copy[j] = cloneAny(src[j])
      }
      copy.length = n
      return copy
    }
    copy.push(typeof x === 'object' && x !== null ? cloneObject(x) : x)
  }
  return copy
}

/**
 * Deep-freezes a value made only of primitives, plain objects and arrays, and returns true; returns false
 * (leaving it partly frozen, which is harmless for the cache's own copy) if it holds anything
 * Object.freeze cannot make immutable: Map, Set, Date, Buffer and typed arrays keep mutable contents.
 */
export function deepFreeze(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) return false
  for (const key of Object.keys(value)) {
    if (!deepFreeze((value as Record<string, unknown>)[key])) return false
  }
  Object.freeze(value)
  return true
}
