import { parse } from 'yaml'
import { EddyError } from './errors.ts'
import { defineSchema, type Schema, type SchemaSpec } from './schema.ts'

const camel = (k: string): string => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())

/** Maps flAPI's kebab-case keys (`primary-key`, `returns-data`, `min-length`, ...) to the TypeScript spelling. */
function camelKeys(v: unknown, parentKey: string | undefined): unknown {
  if (Array.isArray(v)) return v.map((x) => camelKeys(x, undefined))
  if (typeof v !== 'object' || v === null) return v
  // Under `tables` and `columns` the keys are names, not options: keep them as written.
  const names = parentKey === 'tables' || parentKey === 'columns'
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) {
    const key = names ? k : camel(k)
    Object.defineProperty(out, key, {
      value: camelKeys(x, key),
      enumerable: true,
      writable: true,
      configurable: true,
    })
  }
  return out
}

/** Loads a schema written in YAML with flAPI's vocabulary; errors name the offending path. */
export function loadSchemaYaml(text: string): Schema {
  let doc: unknown
  try {
    doc = parse(text)
  } catch (e) {
    throw new EddyError('invalid_schema', `schema: not valid YAML (${(e as Error).message.split('\n')[0]})`)
  }
  return defineSchema(camelKeys(doc, undefined) as SchemaSpec)
}
