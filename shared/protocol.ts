import * as v from 'valibot'
import { HLC_PATTERN } from './hlc.ts'

/**
 * The wire contract of PROTOCOL.md as runtime schemas; the types are inferred from them.
 *
 * PROTOCOL_VERSION history (a test pins a hash of these schemas: change it only with a line here):
 * 1 — push, pull, health, events, conflicts (+ resolve), digest.
 * 1 — (same wire format) column-value objects keep `__proto__`/`constructor`/`prototype` keys.
 */
export const PROTOCOL_VERSION = 1

/**
 * Limits the edge enforces by default: a push past `maxBodyBytes` or `maxMutations` answers 413; a
 * pull page holds `pullLimit` changes when the request names no `limit`, and never more than
 * `maxPullLimit` (the Arrow bulk form: `arrowPullLimit`, `maxArrowPullLimit` rows, as its rows are
 * far cheaper to encode and load than JSON changes).
 */
export const DEFAULT_LIMITS = {
  maxBodyBytes: 1024 * 1024,
  maxMutations: 1000,
  pullLimit: 1000,
  maxPullLimit: 10_000,
  arrowPullLimit: 50_000,
  maxArrowPullLimit: 100_000,
} as const

export const clientId = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9_-]{1,64}$/, 'clientId must match ^[A-Za-z0-9_-]{1,64}$'),
)
export const hlc = v.pipe(
  v.string(),
  v.maxLength(90),
  v.regex(HLC_PATTERN, 'hlc must be <15-digit ms>:<5 base-36 digits>:<node>'),
)
const name = v.pipe(v.string(), v.minLength(1), v.maxLength(128))
const seq = v.pipe(v.number(), v.safeInteger('seq must be an integer'), v.minValue(1, 'seq must be positive'))
/**
 * A JSON object of column values, kept with every own key. Not `v.record`: valibot's record silently
 * drops the keys `__proto__`, `constructor` and `prototype`, so a declared column named `prototype`
 * would vanish from pushes and pulls, and an undeclared `__proto__` column would pass unseen instead
 * of being rejected `unknown_column`. Consumers read these objects with `Object.hasOwn`/`entries`.
 */
const values = v.custom<Record<string, unknown>>(
  (x) => typeof x === 'object' && x !== null && !Array.isArray(x),
  'must be a JSON object',
)

export const mutation = v.strictObject({
  seq,
  table: name,
  op: v.picklist(['upsert', 'delete']),
  key: values,
  values: v.optional(values),
  hlc,
  tx: v.optional(name),
})
export type Mutation = v.InferOutput<typeof mutation>
/** A mutation before the client's outbox gives it its seq. */
export type NewMutation = Omit<Mutation, 'seq'>

export const pushBody = v.strictObject({
  clientId,
  mutations: v.array(mutation),
})
export type PushBody = v.InferOutput<typeof pushBody>

const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function isName(x: unknown): boolean {
  return typeof x === 'string' && x.length >= 1 && x.length <= 128
}

function isMutation(m: unknown): boolean {
  if (!isObject(m)) return false
  for (const k in m) {
    if (!Object.hasOwn(m, k)) continue
    if (
      k !== 'seq' &&
      k !== 'table' &&
      k !== 'op' &&
      k !== 'key' &&
      k !== 'values' &&
      k !== 'hlc' &&
      k !== 'tx'
    )
      return false
  }
  const { seq, table, op, key, values, hlc, tx } = m
  return (
    typeof seq === 'number' &&
    Number.isSafeInteger(seq) &&
    seq >= 1 &&
    isName(table) &&
    (op === 'upsert' || op === 'delete') &&
    isObject(key) &&
    (values === undefined || isObject(values)) &&
    typeof hlc === 'string' &&
    hlc.length <= 90 &&
    HLC_PATTERN.test(hlc) &&
    (tx === undefined || isName(tx))
  )
}

/**
 * A fast check that `input` passes `pushBody` as it is (the same rules, written by hand: a 10,000-
 * mutation envelope checks in a fraction of valibot's time). It only ever accepts what `pushBody`
 * accepts, and then `input` is the parsed body; when it says no, parse with `pushBody` for the
 * exact error.
 */
export function isPushBody(input: unknown): input is PushBody {
  if (!isObject(input)) return false
  for (const k in input) if (Object.hasOwn(input, k) && k !== 'clientId' && k !== 'mutations') return false
  const { clientId: id, mutations } = input
  if (typeof id !== 'string' || !CLIENT_ID.test(id) || !Array.isArray(mutations)) return false
  for (const m of mutations) if (!isMutation(m)) return false
  return true
}

export const PUSH_STATUSES = ['applied', 'stale', 'duplicate', 'conflict', 'rejected'] as const
export type PushStatus = (typeof PUSH_STATUSES)[number]

export const errorDetail = v.object({
  code: v.string(),
  message: v.string(),
  field: v.optional(v.string()),
})
export type ErrorDetail = v.InferOutput<typeof errorDetail>

export const pushResult = v.object({
  seq: v.number(),
  status: v.picklist(PUSH_STATUSES),
  row: v.optional(v.nullable(values)),
  error: v.optional(errorDetail),
})
export type PushResult = v.InferOutput<typeof pushResult>

export const pushResponse = v.object({
  lastSeq: v.number(),
  results: v.array(pushResult),
})
export type PushResponse = v.InferOutput<typeof pushResponse>

export const pullQuery = v.object({
  tables: v.optional(v.string()),
  cursor: v.optional(v.string()),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/, 'limit must be a positive integer'))),
})
export type PullQuery = v.InferOutput<typeof pullQuery>

export const change = v.object({
  table: v.string(),
  key: values,
  row: v.nullable(values),
  hlc: v.string(),
})
export type Change = v.InferOutput<typeof change>

export const pullResponse = v.object({
  changes: v.array(change),
  cursor: v.string(),
  hasMore: v.boolean(),
})
export type PullResponse = v.InferOutput<typeof pullResponse>

export const healthResponse = v.object({
  ok: v.boolean(),
  warehouse: v.picklist(['duckdb', 'postgres', 'd1']),
  protocol: v.number(),
})
export type HealthResponse = v.InferOutput<typeof healthResponse>

export const syncEvent = v.object({
  id: v.union([v.number(), v.string()]),
  clientId: v.string(),
  receivedAt: v.string(),
  mutations: v.number(),
  applied: v.number(),
  stale: v.number(),
  duplicate: v.number(),
  conflict: v.number(),
  rejected: v.number(),
  durationMs: v.number(),
})
export type SyncEvent = v.InferOutput<typeof syncEvent>
export const eventsResponse = v.object({ events: v.array(syncEvent) })
export type EventsResponse = v.InferOutput<typeof eventsResponse>

export const conflictRecord = v.object({
  id: v.union([v.number(), v.string()]),
  table: v.string(),
  key: values,
  stored: v.nullable(values),
  incoming: v.nullable(values),
  hlc: v.string(),
  detectedAt: v.string(),
})
export type ConflictRecord = v.InferOutput<typeof conflictRecord>
export const conflictsResponse = v.object({ conflicts: v.array(conflictRecord) })
export type ConflictsResponse = v.InferOutput<typeof conflictsResponse>

export const resolveBody = v.union([
  v.strictObject({ keep: v.picklist(['warehouse', 'incoming']) }),
  v.strictObject({ values }),
])
export type ResolveBody = v.InferOutput<typeof resolveBody>

export const digestBody = v.strictObject({
  table: name,
  buckets: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(1), v.maxValue(4096))),
  bucket: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0))),
})
export type DigestBody = v.InferOutput<typeof digestBody>
export const digestResponse = v.union([
  v.object({ buckets: v.array(v.string()) }),
  v.object({ entries: v.array(v.object({ key: values, hlc: v.string() })) }),
])
export type DigestResponse = v.InferOutput<typeof digestResponse>

export const errorBody = v.object({ error: errorDetail })
export type ErrorBody = v.InferOutput<typeof errorBody>

/** Every wire schema by name: the pin test hashes this. */
export const WIRE_SCHEMAS = {
  mutation,
  pushBody,
  pushResult,
  pushResponse,
  pullQuery,
  change,
  pullResponse,
  healthResponse,
  syncEvent,
  eventsResponse,
  conflictRecord,
  conflictsResponse,
  resolveBody,
  digestBody,
  digestResponse,
  errorBody,
} as const

/** A stable text form of a valibot schema's structure, for pinning. */
export function describeSchema(s: unknown): unknown {
  if (typeof s !== 'object' || s === null) return s
  const o = s as Record<string, unknown>
  const out: Record<string, unknown> = { kind: o.kind, type: o.type }
  for (const k of ['requirement', 'expects', 'message'])
    if (o[k] !== undefined && typeof o[k] !== 'function') out[k] = String(o[k])
  if (o.entries && typeof o.entries === 'object') {
    out.entries = Object.fromEntries(Object.entries(o.entries).map(([k, x]) => [k, describeSchema(x)]))
  }
  for (const k of ['item', 'wrapped', 'key', 'value']) if (o[k] !== undefined) out[k] = describeSchema(o[k])
  if (Array.isArray(o.options)) out.options = o.options.map(describeSchema)
  if (Array.isArray(o.pipe)) out.pipe = o.pipe.map(describeSchema)
  return out
}
