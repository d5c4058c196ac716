import * as v from 'valibot'
import { EddyError, must } from '../shared/errors.ts'
import { formatHlc } from '../shared/hlc.ts'
import { type PushStatus, pushResponse } from '../shared/protocol.ts'
import type { DemoEddy } from './eddy-client.ts'

/** The client id of the simulated second device; its own, so it never touches this tab's outbox or lastSeq. */
export const OTHER_DEVICE = 'demo-other-device'

/**
 * Makes a manual conflict the way it happens in the field: this tab saves the customer through
 * the client (write-through, so the warehouse row now carries a fresh stamp), then a second device
 * that edited the same customer a minute ago, while offline, pushes its older write over the
 * public protocol. The edge keeps the row and records the conflict for review.
 */
export async function simulateStaleEdit(
  eddy: DemoEddy,
  base: string,
  customerId: number,
  fetchFn: typeof fetch = fetch.bind(globalThis),
): Promise<PushStatus> {
  const rows = await eddy.query('SELECT customer_id, name FROM customers WHERE customer_id = ?', [customerId])
  const row = rows[0]
  if (!row)
    throw new EddyError('invalid_value', `no customer ${customerId} in the cache`, { field: 'customer_id' })
  const now = Date.now()
  await eddy.put('customers', { customer_id: customerId, updated_at: new Date(now).toISOString() })
  const earlier = now - 60_000
  const body = {
    clientId: OTHER_DEVICE,
    mutations: [
      {
        // strictly increasing per client id, as the protocol asks, without keeping state here
        seq: now,
        table: 'customers',
        op: 'upsert',
        key: { customer_id: customerId },
        values: {
          name: `${String(row.name ?? 'customer')} (edited offline)`,
          updated_at: new Date(earlier).toISOString(),
        },
        hlc: formatHlc({ wall: earlier, counter: 0, node: OTHER_DEVICE }),
      },
    ],
  }
  const res = await fetchFn(`${base}/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw new EddyError('protocol', `push answered ${res.status}`, { status: res.status })
  const answer = v.parse(pushResponse, await res.json())
  return must(answer.results[0], 'push result').status
}
