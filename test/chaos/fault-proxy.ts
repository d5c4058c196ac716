import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Prng } from './prng.ts'

/**
 * A lossy HTTP proxy on loopback between clients and the edge. From a seeded PRNG it drops requests
 * (the edge never sees them), drops responses after the edge answered (it committed, the client does
 * not know), delays requests and responses (so concurrent ones overtake each other), sends a request
 * twice at once, and replays a request later, after newer ones (a stale retransmission). When the
 * edge is down the client's connection is cut, as a network failure would.
 */
export interface FaultRates {
  dropRequest: number
  dropResponse: number
  delay: number
  duplicate: number
  replayLater: number
  maxDelayMs: number
}

export const DEFAULT_RATES: FaultRates = {
  dropRequest: 0.06,
  dropResponse: 0.08,
  delay: 0.25,
  duplicate: 0.06,
  replayLater: 0.06,
  maxDelayMs: 120,
}

export interface FaultCounts {
  requests: number
  droppedRequests: number
  droppedResponses: number
  delayed: number
  duplicated: number
  replayed: number
  /** Requests cut because the edge was unreachable (killed or restarting). */
  edgeDown: number
}

export interface FaultProxy {
  /** Base URL of the proxy (no path). */
  readonly url: string
  readonly counts: FaultCounts
  /** Where requests go; changes when the edge restarts on another port. */
  target: string
  /** Faults on or off (off: a plain pass-through, for the final convergence check). */
  faults: boolean
  /** Pushes currently forwarded to the edge and not yet answered. */
  inflightPushes(): number
  /** Waits for every delayed replay to finish. */
  drain(): Promise<void>
  close(): Promise<void>
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

interface Upstream {
  status: number
  headers: Record<string, string>
  body: Buffer
}

export async function startFaultProxy(opts: {
  target: string
  rng: Prng
  rates?: FaultRates
}): Promise<FaultProxy> {
  const rates = opts.rates ?? DEFAULT_RATES
  const { rng } = opts
  const counts: FaultCounts = {
    requests: 0,
    droppedRequests: 0,
    droppedResponses: 0,
    delayed: 0,
    duplicated: 0,
    replayed: 0,
    edgeDown: 0,
  }
  const replays = new Set<Promise<unknown>>()
  let inflight = 0

  const forward = async (req: IncomingMessage, body: Buffer): Promise<Upstream> => {
    const headers: Record<string, string> = {}
    for (const name of ['content-type', 'authorization', 'accept']) {
      const v = req.headers[name]
      if (typeof v === 'string') headers[name] = v
    }
    const isPush = req.url?.endsWith('/push') === true
    if (isPush) inflight += 1
    try {
      const res = await fetch(`${proxy.target}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers,
        ...(body.length > 0 ? { body: new Uint8Array(body) } : {}),
      })
      const out: Record<string, string> = {}
      res.headers.forEach((v, k) => {
        // the Arrow pull's paging travels in Eddy-* headers (PROTOCOL.md)
        if (k === 'content-type' || k.startsWith('eddy-')) out[k] = v
      })
      return { status: res.status, headers: out, body: Buffer.from(await res.arrayBuffer()) }
    } finally {
      if (isPush) inflight -= 1
    }
  }

  const cut = (res: ServerResponse): void => {
    res.socket?.destroy()
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req)
    counts.requests += 1
    const faulty = proxy.faults
    // Every decision is drawn up front, in a fixed order, so a seed maps to one plan per request.
    const d = {
      dropRequest: rng.chance(rates.dropRequest),
      delayBefore: rng.chance(rates.delay) ? rng.int(1, rates.maxDelayMs) : 0,
      duplicate: rng.chance(rates.duplicate),
      replay: rng.chance(rates.replayLater) ? rng.int(50, 800) : 0,
      dropResponse: rng.chance(rates.dropResponse),
      delayAfter: rng.chance(rates.delay) ? rng.int(1, rates.maxDelayMs) : 0,
    }
    if (faulty && d.dropRequest) {
      counts.droppedRequests += 1
      cut(res)
      return
    }
    if (faulty && d.delayBefore > 0) {
      counts.delayed += 1
      await sleep(d.delayBefore)
    }
    if (faulty && d.replay > 0 && req.method === 'POST') {
      counts.replayed += 1
      const later = sleep(d.replay)
        .then(() => forward(req, body))
        .catch(() => undefined)
      replays.add(later)
      void later.finally(() => replays.delete(later))
    }
    let answer: Upstream
    try {
      if (faulty && d.duplicate) {
        counts.duplicated += 1
        const [first, second] = await Promise.allSettled([forward(req, body), forward(req, body)])
        const ok = [first, second].filter(
          (r): r is PromiseFulfilledResult<Upstream> => r.status === 'fulfilled',
        )
        const chosen = ok[rng.int(0, Math.max(0, ok.length - 1))]
        if (chosen === undefined) throw new Error('both copies failed')
        answer = chosen.value
      } else {
        answer = await forward(req, body)
      }
    } catch {
      counts.edgeDown += 1
      cut(res)
      return
    }
    if (faulty && d.dropResponse) {
      counts.droppedResponses += 1
      cut(res)
      return
    }
    if (faulty && d.delayAfter > 0) {
      counts.delayed += 1
      await sleep(d.delayAfter)
    }
    res.writeHead(answer.status, answer.headers)
    res.end(answer.body)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => cut(res))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const proxy: FaultProxy = {
    url: `http://127.0.0.1:${port}`,
    counts,
    target: opts.target,
    faults: true,
    inflightPushes: () => inflight,
    async drain() {
      while (replays.size > 0) await Promise.allSettled([...replays])
    },
    async close() {
      await proxy.drain()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
  return proxy
}

/** Total faults injected (edge-down cuts are counted with the restarts that caused them). */
export function faultTotal(c: FaultCounts): number {
  return c.droppedRequests + c.droppedResponses + c.delayed + c.duplicated + c.replayed
}
