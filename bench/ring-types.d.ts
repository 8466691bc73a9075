// The `hashring` package (a benchmark anchor) ships no types; only what bench/ring.ts uses.
declare module 'hashring' {
  export default class HashRing {
    constructor(servers: string[] | string)
    get(key: string): string
    add(server: string): HashRing
    remove(server: string): HashRing
  }
}
