import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { startNodeServer } from '../../edge/runtime/node.ts'
import { openDuckDbWarehouse } from '../../edge/warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'

/**
 * `NodeServer.close()` must finish even when clients keep connections open: an idle keep-alive
 * socket is closed at once, and one stuck mid-request (headers never finished) is cut after the
 * grace period instead of holding the shutdown until Node's own header timeout.
 */

let w: Warehouse
beforeAll(async () => {
  w = await openDuckDbWarehouse({ schema: demoSchema })
  await w.migrate()
})
afterAll(async () => {
  await w.close()
})

/** A raw loopback connection to `port`, with everything it receives and a promise of its close. */
async function rawClient(
  port: number,
): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((ok, fail) => {
    socket.once('connect', ok)
    socket.once('error', fail)
  })
  let text = ''
  socket.on('data', (d: Buffer) => {
    text += d.toString()
  })
  socket.on('error', () => {})
  const closed = new Promise<void>((ok) => socket.once('close', () => ok()))
  return { socket, received: () => text, closed }
}

describe('NodeServer.close', () => {
  it('closes idle keep-alive and stalled connections, then resolves', async () => {
    const server = await startNodeServer({ warehouse: w, closeGraceMs: 200 })

    // a keep-alive connection that got its answer and now sits idle
    const idle = await rawClient(server.port)
    idle.socket.write('GET /sync/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n')
    while (!idle.received().includes('"ok":true')) await new Promise((r) => setTimeout(r, 10))
    expect(idle.received()).toMatch(/^HTTP\/1\.1 200/)

    // a client that never finishes its request headers
    const stalled = await rawClient(server.port)
    stalled.socket.write('POST /sync/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n')

    await server.close()
    // both connections were closed by the server, and nothing new is accepted
    await Promise.all([idle.closed, stalled.closed])
    expect(stalled.received()).not.toMatch(/^HTTP\/1\.1 200/)
    await expect(fetch(`${server.url}/sync/health`)).rejects.toThrow()
  }, 15_000)
})
