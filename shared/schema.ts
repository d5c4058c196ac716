import { parseDuration } from './duration.ts'
import { EddyError } from './errors.ts'

/** Column types a table may declare. `decimal` takes a precision and scale: `decimal(10,2)`. */
export const COLUMN_TYPES = [
  'integer',
  'bigint',
  'double',
  'decimal',
  'text',
  'boolean',
  'date',
  'timestamp',
  'uuid',
  'json',
] as const
export type ColumnType = (typeof COLUMN_TYPES)[number]
export type ColumnTypeSpec = Exclude<ColumnType, 'decimal'> | `decimal(${number},${number})` | 'decimal'

export const SYNC_MODES = ['write-through', 'write-back', 'hybrid', 'invalidate'] as const
export type SyncMode = (typeof SYNC_MODES)[number]

export const CONFLICT_STRATEGIES = ['lww', 'merge', 'manual'] as const
export type ConflictStrategy = (typeof CONFLICT_STRATEGIES)[number]

export const MERGE_RULES = ['lww', 'max', 'min', 'concat'] as const
export type MergeRule = (typeof MERGE_RULES)[number]

export type ValidatorSpec =
  | { type: 'int'; min?: number; max?: number }
  | { type: 'number'; min?: number; max?: number }
  | { type: 'string'; regex?: string; minLength?: number; maxLength?: number }
  | { type: 'enum'; allowedValues: readonly string[] }
  | { type: 'email' }
  | { type: 'uuid' }
  | { type: 'date' }
  | { type: 'time' }
  | { type: 'timestamp' }
  | { type: 'boolean' }

export interface ColumnSpec {
  type: ColumnTypeSpec
  validators?: readonly ValidatorSpec[]
  /** The column must hold a value once the write is applied (checked on the row as it would stand). */
  required?: boolean
  /** Per-column rule for tables whose conflict strategy is `merge` (default `lww`). */
  merge?: MergeRule
}

export interface TableSpec {
  primaryKey: readonly string[]
  columns: Readonly<Record<string, ColumnSpec>>
  sync?: SyncMode
  /** Hybrid tables: how often queued writes are pushed (`5m`). */
  schedule?: string | number
  /** How often the client pulls this table (`1h`). */
  refresh?: string | number
  /** After a local write, mark the table stale so the next read reloads it. */
  invalidateOnWrite?: boolean
  /** After a local write, reload the table at once. */
  refreshOnWrite?: boolean
  conflict?: ConflictStrategy
  /** Push results carry the stored row (SQL `RETURNING *`). */
  returnsData?: boolean
  /**
   * Scopes reads and writes by the caller's `tenant` claim. It must be one of the primary-key
   * columns, so each tenant has its own key space and nothing tells one tenant another's keys.
   */
  tenantColumn?: string
}

export interface SchemaSpec {
  tables: Readonly<Record<string, TableSpec>>
  /** Largest allowed lead of a write's HLC over the edge's clock (default `5m`). */
  maxClockDrift?: string | number
  retention?: { keepEvents?: number; maxAge?: string | number }
}

export interface Column {
  readonly name: string
  readonly type: ColumnType
  /** decimal precision and scale; 0 for other types */
  readonly precision: number
  readonly scale: number
  readonly validators: readonly ValidatorSpec[]
  readonly required: boolean
  readonly merge: MergeRule
  readonly primaryKey: boolean
}

export interface Table {
  readonly name: string
  readonly primaryKey: readonly string[]
  /** In declaration order. */
  readonly columns: readonly Column[]
  readonly columnsByName: ReadonlyMap<string, Column>
  readonly sync: SyncMode
  readonly scheduleMs: number | undefined
  readonly refreshMs: number | undefined
  readonly invalidateOnWrite: boolean
  readonly refreshOnWrite: boolean
  readonly conflict: ConflictStrategy
  readonly returnsData: boolean
  readonly tenantColumn: string | undefined
}

export interface Schema<S extends SchemaSpec = SchemaSpec> {
  readonly spec: S
  readonly tables: ReadonlyMap<string, Table>
  readonly maxClockDriftMs: number
  readonly retention: { readonly keepEvents: number | undefined; readonly maxAgeMs: number | undefined }
  /** The table, or an `unknown_table` error. */
  table(name: string): Table
}

type ValueOf<T extends ColumnTypeSpec> = T extends 'integer' | 'double'
  ? number
  : T extends 'bigint'
    ? number | bigint | string
    : T extends 'boolean'
      ? boolean
      : T extends 'json'
        ? unknown
        : string
/** The row type of a table in a schema built with `defineSchema`. */
export type RowOf<S extends SchemaSpec, T extends keyof S['tables']> = {
  [C in keyof S['tables'][T]['columns']]?: ValueOf<S['tables'][T]['columns'][C]['type']> | null
}
export type Row = Record<string, unknown>

const IDENT = /^[a-z][a-z0-9_]{0,62}$/

function fail(path: string, message: string): never {
  throw new EddyError('invalid_schema', `${path}: ${message}`)
}

function checkKeys(obj: object, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) fail(`${path}.${k}`, `unknown key (allowed: ${allowed.join(', ')})`)
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function parseType(spec: unknown, path: string): { type: ColumnType; precision: number; scale: number } {
  if (typeof spec !== 'string') fail(path, 'must be a string')
  const dec = /^decimal\s*(?:\(\s*(\d+)\s*,\s*(\d+)\s*\))?$/.exec(spec)
  if (dec) {
    const precision = dec[1] === undefined ? 18 : Number(dec[1])
    const scale = dec[2] === undefined ? 3 : Number(dec[2])
    if (precision < 1 || precision > 38 || scale > precision)
      fail(path, 'decimal needs 1 <= precision <= 38, scale <= precision')
    return { type: 'decimal', precision, scale }
  }
  if (!(COLUMN_TYPES as readonly string[]).includes(spec)) {
    fail(path, `unknown type '${spec}' (allowed: ${COLUMN_TYPES.join(', ')}, decimal(p,s))`)
  }
  return { type: spec as ColumnType, precision: 0, scale: 0 }
}

function checkNumber(v: unknown, path: string): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) fail(path, 'must be a finite number')
}

function parseValidator(v: unknown, path: string): ValidatorSpec {
  if (!isObject(v)) fail(path, 'must be an object with a type')
  switch (v.type) {
    case 'int':
    case 'number':
      checkKeys(v, ['type', 'min', 'max'], path)
      checkNumber(v.min, `${path}.min`)
      checkNumber(v.max, `${path}.max`)
      break
    case 'string':
      checkKeys(v, ['type', 'regex', 'minLength', 'maxLength'], path)
      if (v.regex !== undefined) {
        if (typeof v.regex !== 'string') fail(`${path}.regex`, 'must be a string')
        try {
          new RegExp(v.regex, 'u')
        } catch {
          fail(`${path}.regex`, 'not a valid regular expression')
        }
      }
      checkNumber(v.minLength, `${path}.minLength`)
      checkNumber(v.maxLength, `${path}.maxLength`)
      break
    case 'enum':
      checkKeys(v, ['type', 'allowedValues'], path)
      if (
        !Array.isArray(v.allowedValues) ||
        v.allowedValues.length === 0 ||
        !v.allowedValues.every((x) => typeof x === 'string')
      ) {
        fail(`${path}.allowedValues`, 'must be a non-empty list of strings')
      }
      break
    case 'email':
    case 'uuid':
    case 'date':
    case 'time':
    case 'timestamp':
    case 'boolean':
      checkKeys(v, ['type'], path)
      break
    default:
      fail(
        `${path}.type`,
        `unknown validator '${String(v.type)}' (allowed: int, number, string, enum, email, uuid, date, time, timestamp, boolean)`,
      )
  }
  return v as unknown as ValidatorSpec
}

function parseColumn(
  name: string,
  spec: unknown,
  pk: boolean,
  strategy: ConflictStrategy,
  path: string,
): Column {
  if (!IDENT.test(name))
    fail(path, 'column names are lower-case identifiers (a-z, 0-9, _), not starting with _ or a digit')
  if (!isObject(spec)) fail(path, 'must be an object with a type')
  checkKeys(spec, ['type', 'validators', 'required', 'merge'], path)
  const { type, precision, scale } = parseType(spec.type, `${path}.type`)
  const validatorsIn = spec.validators ?? []
  if (!Array.isArray(validatorsIn)) fail(`${path}.validators`, 'must be a list')
  const validators = validatorsIn.map((v, i) => parseValidator(v, `${path}.validators[${i}]`))
  if (spec.required !== undefined && typeof spec.required !== 'boolean')
    fail(`${path}.required`, 'must be true or false')
  const merge = spec.merge ?? 'lww'
  if (!(MERGE_RULES as readonly unknown[]).includes(merge))
    fail(`${path}.merge`, `must be one of ${MERGE_RULES.join(', ')}`)
  if (merge !== 'lww' && strategy !== 'merge')
    fail(`${path}.merge`, "needs the table's conflict strategy to be 'merge'")
  if (merge !== 'lww' && pk) fail(`${path}.merge`, 'a primary-key column cannot have a merge rule')
  if (
    (merge === 'max' || merge === 'min') &&
    !['integer', 'bigint', 'double', 'decimal', 'date', 'timestamp', 'text'].includes(type)
  ) {
    fail(`${path}.merge`, `'${merge}' needs an ordered type`)
  }
  if (merge === 'concat' && type !== 'text') fail(`${path}.merge`, "'concat' needs a text column")
  return {
    name,
    type,
    precision,
    scale,
    validators,
    required: pk || spec.required === true,
    merge: merge as MergeRule,
    primaryKey: pk,
  }
}

function parseTable(name: string, spec: unknown, path: string): Table {
  if (!IDENT.test(name))
    fail(path, 'table names are lower-case identifiers (a-z, 0-9, _), not starting with _ or a digit')
  if (!isObject(spec)) fail(path, 'must be an object')
  checkKeys(
    spec,
    [
      'primaryKey',
      'columns',
      'sync',
      'schedule',
      'refresh',
      'invalidateOnWrite',
      'refreshOnWrite',
      'conflict',
      'returnsData',
      'tenantColumn',
    ],
    path,
  )
  const conflict = spec.conflict ?? 'lww'
  if (!(CONFLICT_STRATEGIES as readonly unknown[]).includes(conflict)) {
    fail(`${path}.conflict`, `must be one of ${CONFLICT_STRATEGIES.join(', ')}`)
  }
  const pkIn = typeof spec.primaryKey === 'string' ? [spec.primaryKey] : spec.primaryKey
  if (!Array.isArray(pkIn) || pkIn.length === 0 || !pkIn.every((k) => typeof k === 'string')) {
    fail(`${path}.primaryKey`, 'must name one or more columns')
  }
  if (new Set(pkIn).size !== pkIn.length) fail(`${path}.primaryKey`, 'names a column twice')
  if (!isObject(spec.columns) || Object.keys(spec.columns).length === 0)
    fail(`${path}.columns`, 'must declare at least one column')
  const columns = Object.entries(spec.columns).map(([c, cs]) =>
    parseColumn(c, cs, pkIn.includes(c), conflict as ConflictStrategy, `${path}.columns.${c}`),
  )
  const columnsByName = new Map(columns.map((c) => [c.name, c]))
  for (const k of pkIn) {
    const col = columnsByName.get(k)
    if (!col) fail(`${path}.primaryKey`, `names '${k}', which is not a declared column`)
    if (col.type === 'json' || col.type === 'double')
      fail(`${path}.primaryKey`, `'${k}' has type ${col.type}, which cannot be a key`)
  }
  const sync = spec.sync ?? 'write-back'
  if (!(SYNC_MODES as readonly unknown[]).includes(sync))
    fail(`${path}.sync`, `must be one of ${SYNC_MODES.join(', ')}`)
  for (const flag of ['invalidateOnWrite', 'refreshOnWrite', 'returnsData'] as const) {
    if (spec[flag] !== undefined && typeof spec[flag] !== 'boolean')
      fail(`${path}.${flag}`, 'must be true or false')
  }
  const scheduleMs =
    spec.schedule === undefined ? undefined : parseDuration(spec.schedule as string, `${path}.schedule`)
  if (scheduleMs !== undefined && sync !== 'hybrid')
    fail(`${path}.schedule`, 'only hybrid tables have a push schedule')
  const refreshMs =
    spec.refresh === undefined ? undefined : parseDuration(spec.refresh as string, `${path}.refresh`)
  const tenantColumn = spec.tenantColumn
  if (tenantColumn !== undefined) {
    if (typeof tenantColumn !== 'string' || !columnsByName.has(tenantColumn)) {
      fail(`${path}.tenantColumn`, 'must name a declared column')
    }
    // Outside the key, every tenant would share one key space: a write to a key another tenant
    // holds would have to be refused where a free key is accepted, telling the caller it exists.
    if (!pkIn.includes(tenantColumn))
      fail(`${path}.tenantColumn`, `'${tenantColumn}' must be part of the primary key`)
  }
  return {
    name,
    primaryKey: pkIn,
    columns,
    columnsByName,
    sync: sync as SyncMode,
    scheduleMs: sync === 'hybrid' ? (scheduleMs ?? 300_000) : undefined,
    refreshMs,
    invalidateOnWrite: sync === 'invalidate' || spec.invalidateOnWrite === true,
    refreshOnWrite: spec.refreshOnWrite === true,
    conflict: conflict as ConflictStrategy,
    returnsData: spec.returnsData === true,
    tenantColumn,
  }
}

/**
 * Checks a schema and fills in its defaults. A bad schema throws `invalid_schema` naming the
 * offending path, e.g. `tables.orders.columns.total_amount.validators[0].regex: not a valid regular expression`.
 */
export function defineSchema<const S extends SchemaSpec>(spec: S): Schema<S> {
  const input: unknown = spec
  if (!isObject(input)) fail('schema', 'must be an object')
  checkKeys(input, ['tables', 'maxClockDrift', 'retention'], 'schema')
  if (!isObject(input.tables) || Object.keys(input.tables).length === 0)
    fail('tables', 'must declare at least one table')
  const tables = new Map<string, Table>()
  for (const [name, ts] of Object.entries(input.tables))
    tables.set(name, parseTable(name, ts, `tables.${name}`))
  const maxClockDriftMs =
    spec.maxClockDrift === undefined ? 300_000 : parseDuration(spec.maxClockDrift, 'maxClockDrift')
  const r: unknown = input.retention ?? {}
  if (!isObject(r)) fail('retention', 'must be an object')
  checkKeys(r, ['keepEvents', 'maxAge'], 'retention')
  if (
    r.keepEvents !== undefined &&
    (typeof r.keepEvents !== 'number' || !Number.isInteger(r.keepEvents) || r.keepEvents < 1)
  ) {
    fail('retention.keepEvents', 'must be a positive integer')
  }
  const retention = {
    keepEvents: r.keepEvents as number | undefined,
    maxAgeMs: r.maxAge === undefined ? undefined : parseDuration(r.maxAge as string, 'retention.maxAge'),
  }
  return {
    spec,
    tables,
    maxClockDriftMs,
    retention,
    table(name: string): Table {
      const t = tables.get(name)
      if (!t) throw new EddyError('unknown_table', `unknown table '${name}'`)
      return t
    },
  }
}
