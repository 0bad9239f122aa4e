// The `large` template: a generated architecture of many simulated services, for trying the
// mesh at the size real microservice systems have. A tree of services under one gateway,
// at most `fanout` calls out of each, at most `depth` services on any path, with a few
// databases of fixed capacity called by the leaves. Seeded: the same options write the
// same file, so a mesh.yaml can be regenerated instead of kept.
//
//   ingress ─▶ gateway ─┬─▶ aggregator ─┬─▶ leaf ─▶ db (concurrency: N)
//                       │               └─▶ leaf
//                       └─▶ leaf

import {MeshError} from '../errors.js'
import {SeededRandom, type Random} from '../time/random.js'
import {SCHEMA_MODELINE} from '../config/json-schema.js'

export interface LargeOptions {
  services: number
  /** Services on the longest path from the ingress, gateway and database included. Default min(6, services). */
  depth?: number
  /** Most services one service calls. Default 3, or the least that fits `services` within `depth`. */
  fanout?: number
  seed?: number
}

export interface GeneratedService {
  name: string
  role: 'gateway' | 'aggregator' | 'leaf' | 'database'
  /** 1 for the gateway; a service is one level below the deepest of its callers. */
  level: number
  p50Ms: number
  p99Ms: number
  calls: Array<{service: string; probability: number}>
  concurrency?: number
}

export interface LargeArchitecture {
  services: GeneratedService[]
  depth: number
  fanout: number
  seed: number
}

export const DEFAULT_DEPTH = 6
export const DEFAULT_FANOUT = 3
export const DEFAULT_SEED = 1
/** Past this a mesh.yaml is no longer something one laptop runs; the config limits allow more. */
export const MAX_SERVICES = 1000

const DOMAINS = [
  'catalog', 'orders', 'users', 'search', 'pricing', 'inventory', 'shipping', 'reviews', 'accounts', 'billing',
  'cart', 'checkout', 'fraud', 'media', 'notifications', 'profiles', 'promotions', 'ratings', 'recommendations',
  'returns', 'sessions', 'tax', 'wishlist', 'loyalty', 'content', 'ads', 'geo', 'identity', 'ledger', 'audit',
]
const DATABASES = ['orders-db', 'users-db', 'catalog-db', 'events-db', 'ledger-db']

const bad = (message: string) => new MeshError('MESH_BAD_FLAG', message, {hints: ['Example: `mesh init --template large --services 100 --depth 6 --fanout 3`.']})

function positive(flag: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw bad(`--${flag} ${v}: expected a whole number of at least 1.`)
}

/** Services a tree of this depth and fanout holds: 1 + f + f² + … + f^(depth-1). */
function treeCapacity(depth: number, fanout: number): number {
  let total = 0
  let level = 1
  for (let i = 0; i < depth && total <= MAX_SERVICES; i++, level *= fanout) total += level
  return total
}

/** A few databases: one per ~25 services, 1 to 5; none in a mesh too small or too shallow to have a tier below its services. */
function databaseCount(services: number, depth: number): number {
  if (services < 4 || depth < 3) return 0
  return Math.min(DATABASES.length, Math.max(1, Math.round(services / 25)))
}

/** How n services split into the tree under the gateway and the databases below it. */
function shape(n: number, depth: number): {dbs: number; treeDepth: number; treeSize: number} {
  // The spine above the databases takes depth - 1 services: what is left over may be databases.
  const dbs = Math.min(databaseCount(n, depth), n - depth + 1)
  return {dbs, treeDepth: dbs > 0 ? depth - 1 : depth, treeSize: n - dbs}
}

/** The architecture's shape, checked and seeded; `largeMeshYaml` writes it. */
export function generateLarge(options: LargeOptions): LargeArchitecture {
  const {services: n, seed = DEFAULT_SEED} = options
  positive('services', n)
  positive('depth', options.depth)
  positive('fanout', options.fanout)
  if (!Number.isInteger(seed)) throw bad(`--seed ${seed}: expected a whole number.`)
  if (n > MAX_SERVICES) throw bad(`--services ${n}: at most ${MAX_SERVICES} (a mesh this size does not run on one machine).`)
  const depth = options.depth ?? Math.min(DEFAULT_DEPTH, n)
  if (depth > n) throw bad(`--depth ${depth} is more than --services ${n}: a path of ${depth} services needs at least ${depth} of them.`)
  const {dbs, treeDepth, treeSize} = shape(n, depth)
  if (treeDepth === 1 && treeSize > 1) throw bad(`--depth 1 holds the gateway alone, not --services ${n}: raise --depth.`)
  const fits = (services: number, f: number) => treeCapacity(shape(services, depth).treeDepth, f) >= shape(services, depth).treeSize
  let fanout = options.fanout
  if (fanout === undefined) {
    fanout = DEFAULT_FANOUT
    while (!fits(n, fanout)) fanout++
  } else if (!fits(n, fanout)) {
    let most = n - 1
    while (most > depth && !fits(most, fanout)) most--
    throw bad(`--services ${n} do not fit --depth ${depth} --fanout ${fanout}: at most ${most} services. Raise --depth or --fanout, or lower --services.`)
  }

  const random = new SeededRandom(seed)
  // The tree: a spine that reaches treeDepth (so the deepest path is exactly `depth`),
  // then each further service under a random service above the last level with room.
  const parent: number[] = [-1]
  const level: number[] = [1]
  const children: number[][] = [[]]
  const add = (p: number) => {
    const i = parent.length
    parent.push(p)
    level.push(level[p] + 1)
    children.push([])
    children[p].push(i)
    return i
  }
  for (let i = 1; i < treeDepth; i++) add(i - 1)
  while (parent.length < treeSize) {
    const open = parent.map((_, i) => i).filter((i) => level[i] < treeDepth && children[i].length < fanout)
    add(open[random.int(open.length)])
  }

  // Databases: each called by one service with a free call (leaves first, as the tier that
  // stores), the spine's end among them so the deepest path ends in a database.
  const dbCallers: number[][] = Array.from({length: dbs}, () => [])
  const calls = (i: number) => children[i].length + dbCallers.reduce((k, callers) => k + (callers.includes(i) ? 1 : 0), 0)
  for (let d = 0; d < dbs; d++) {
    const free = parent.map((_, i) => i).filter((i) => calls(i) < fanout && !dbCallers.some((c) => c.includes(i)))
    const leaves = free.filter((i) => children[i].length === 0 && i !== 0)
    const pool = leaves.length > 0 ? leaves : free.length > 0 ? free : parent.map((_, i) => i).filter((i) => calls(i) < fanout)
    if (d > 0 && pool.length === 0) throw bad(`--services ${n} do not fit --depth ${depth} --fanout ${fanout}: no service has a call left for database ${DATABASES[d]}. Raise --fanout.`)
    dbCallers[d].push(d === 0 ? treeDepth - 1 : pool[random.int(pool.length)])
  }
  // Other leaves read a database too, now and then.
  if (dbs > 0) {
    for (let i = 1; i < treeSize; i++) {
      if (children[i].length > 0 || dbCallers.some((c) => c.includes(i)) || calls(i) >= fanout) continue
      if (random.next() < 0.4) dbCallers[random.int(dbs)].push(i)
    }
  }

  const treeNames = nameTree(treeSize, children)
  const out: GeneratedService[] = []
  for (let i = 0; i < treeSize; i++) {
    const role = i === 0 ? 'gateway' : children[i].length > 0 ? 'aggregator' : 'leaf'
    const onSpine = i < treeDepth
    const latency = role === 'gateway' ? between(random, 1, 3) : role === 'aggregator' ? between(random, 2, 10) : between(random, 2, 25)
    out.push({
      name: treeNames[i],
      role,
      level: level[i],
      p50Ms: latency,
      p99Ms: latency * between(random, 3, 8),
      calls: [
        // The spine's calls always happen, so every request goes the whole depth; other calls are sometimes skipped, as real requests do.
        ...children[i].map((c) => ({service: treeNames[c], probability: onSpine && c === i + 1 ? 1 : tenth(random, 0.3, 1)})),
        ...dbCallers.flatMap((callers, d) => (callers.includes(i) ? [{service: DATABASES[d], probability: i === treeDepth - 1 && d === 0 ? 1 : tenth(random, 0.5, 1)}] : [])),
      ],
    })
  }
  for (let d = 0; d < dbs; d++) {
    const p50 = between(random, 3, 15)
    out.push({
      name: DATABASES[d],
      role: 'database',
      level: Math.max(...dbCallers[d].map((c) => level[c])) + 1,
      p50Ms: p50,
      p99Ms: p50 * between(random, 4, 10),
      calls: [],
      concurrency: 10 * between(random, 1, 5),
    })
  }
  // Top down, as the names were given: the file reads from the gateway to the databases.
  const tree = out.filter((s) => s.role !== 'database').sort((a, b) => a.level - b.level)
  return {services: [...tree, ...out.filter((s) => s.role === 'database')], depth, fanout, seed}
}

/** Names by level, top down: domain words, then the same words numbered when there are more services than words. */
function nameTree(size: number, children: number[][]): string[] {
  const names = new Array<string>(size)
  names[0] = 'gateway'
  const queue = [0]
  let next = 0
  while (queue.length > 0) {
    for (const c of children[queue.shift()!]) {
      const word = DOMAINS[next % DOMAINS.length]
      const round = Math.floor(next / DOMAINS.length)
      names[c] = round === 0 ? word : `${word}-${round + 1}`
      next++
      queue.push(c)
    }
  }
  return names
}

function between(random: Random, lo: number, hi: number): number {
  return lo + random.int(hi - lo + 1)
}

function tenth(random: Random, lo: number, hi: number): number {
  return Math.round((lo + random.next() * (hi - lo)) * 10) / 10
}

/** The architecture as a mesh.yaml, with a header saying how to regenerate it. */
export function largeMeshYaml(arch: LargeArchitecture): string {
  const byRole = (role: GeneratedService['role'], what: string) => {
    const n = arch.services.filter((s) => s.role === role).length
    return `${n} ${what}${n === 1 ? '' : 's'}`
  }
  const width = Math.max(...arch.services.map((s) => s.name.length)) + 2
  const lines = [
    SCHEMA_MODELINE,
    `# A generated architecture: ${arch.services.length} simulated services, at most ${arch.depth} on a path, each calling at most ${arch.fanout}.`,
    `#   ${byRole('gateway', 'gateway')} ─▶ ${byRole('aggregator', 'aggregator')} ─▶ ${byRole('leaf', 'leaf service')} ─▶ ${byRole('database', 'database')} (fixed capacity: simulate.concurrency)`,
    `# Written by: mesh init --template large --services ${arch.services.length} --depth ${arch.depth} --fanout ${arch.fanout} --seed ${arch.seed}`,
    '# (the same command writes the same file; change --seed for another one). Try:',
    '#   mesh up -d && curl localhost:8000/',
    '#   mesh load http://localhost:8000/ --rps 50 --duration 20s',
    '#   mesh trace                 # the slowest recent request, hop by hop',
    '#   mesh top                   # the topology, live',
    'name: large',
    '',
    'ingress:',
    '  port: 8000',
    '  routes:',
    '    - {prefix: /, service: gateway}',
    '',
    'services:',
  ]
  for (const s of arch.services) {
    lines.push(`  ${`${s.name}:`.padEnd(width)}  # ${s.role}, level ${s.level}`)
    if (s.calls.length > 0) lines.push(`    dependsOn: [${s.calls.map((c) => c.service).join(', ')}]`)
    lines.push('    simulate:')
    lines.push(`      latency: {p50: ${s.p50Ms}ms, p99: ${s.p99Ms}ms}`)
    if (s.concurrency !== undefined) lines.push(`      concurrency: ${s.concurrency}`)
    if (s.calls.length > 0) {
      if (s.calls.length > 1) lines.push('      callMode: parallel')
      lines.push('      calls:')
      for (const c of s.calls) lines.push(`        - {service: ${c.service}, probability: ${c.probability}, path: /${c.service}}`)
    }
  }
  return `${lines.join('\n')}\n`
}
