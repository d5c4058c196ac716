import { transferHandlers } from 'comlink'
import { EddyError, isErrorCode } from '../../shared/errors.ts'

/**
 * Lets an `EddyError` thrown in the worker arrive on the page as an `EddyError` with its `code` and
 * `field` (Comlink's own handler keeps only message, name and stack). Both sides call this once.
 */
interface Thrown {
  isError: boolean
  value: {
    message?: string
    name?: string
    stack?: string
    code?: unknown
    field?: unknown
    status?: unknown
  }
}

let installed = false

export function installErrorTransfer(): void {
  if (installed) return
  const original = transferHandlers.get('throw')
  if (original === undefined) return
  installed = true
  transferHandlers.set('throw', {
    canHandle: (v: unknown): v is unknown => original.canHandle(v),
    serialize(v: unknown) {
      const [serialized, transfers] = original.serialize(v) as [Thrown, Transferable[]]
      const err = (v as { value?: unknown }).value
      if (err instanceof EddyError && serialized.isError) {
        serialized.value = {
          ...serialized.value,
          code: err.code,
          ...(err.field === undefined ? {} : { field: err.field }),
          ...(err.status === undefined ? {} : { status: err.status }),
        }
      }
      return [serialized, transfers]
    },
    deserialize(s: unknown) {
      const { isError, value } = s as Thrown
      if (isError && value.name === 'EddyError' && isErrorCode(value.code)) {
        throw new EddyError(value.code, value.message ?? '', {
          ...(typeof value.field === 'string' ? { field: value.field } : {}),
          ...(typeof value.status === 'number' ? { status: value.status } : {}),
        })
      }
      return original.deserialize(s)
    },
  })
}
