/**
 * The demo's service worker: after a first visit the app shell, the built JS, the DuckDB worker and
 * its wasm files come from Cache Storage, so the page opens offline. The list of files is written
 * into this script at build time (demo/precache-plugin.ts), so a new build is a new worker with a
 * new cache, and the old cache is dropped when it activates.
 *
 * The sync API is never cached: its requests go straight to the network (and fail offline, which
 * the client reports as offline rather than serving stale answers).
 */
const sw = self as unknown as ServiceWorkerGlobalScope

/** Replaced by the build with `{"version": "...", "files": ["index.html", "assets/...", ...]}`. */
const MANIFEST = '__EDDY_PRECACHE_MANIFEST__'
/** The sync API's mount path, as in demo/main.ts. */
const API = '/sync'

const { version, files } = JSON.parse(MANIFEST) as { version: string; files: string[] }
const CACHE = `eddy-demo-${version}`
const SHELL = new URL('index.html', sw.registration.scope).href

sw.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE)
      // `cache: 'reload'` bypasses the HTTP cache so the precache holds exactly this build's bytes.
      await cache.addAll(
        files.map((f) => new Request(new URL(f, sw.registration.scope), { cache: 'reload' })),
      )
      await sw.skipWaiting()
    })(),
  )
})

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('eddy-demo-') && name !== CACHE) await caches.delete(name)
      }
      await sw.clients.claim()
    })(),
  )
})

sw.addEventListener('fetch', (event) => {
  const req = event.request
  const url = new URL(req.url)
  if (req.method !== 'GET' || url.origin !== sw.location.origin) return
  if (url.pathname === API || url.pathname.startsWith(`${API}/`)) return
  if (req.mode === 'navigate') {
    // The page itself: the network's copy when it answers (a fresh build shows at once), else the shell.
    event.respondWith(
      fetch(req).catch(async () => {
        const shell = await caches.match(SHELL, { cacheName: CACHE })
        if (shell) return shell
        throw new Error('offline and the shell is not cached yet')
      }),
    )
    return
  }
  // Built files have content hashes in their names: the cached copy is the right one.
  event.respondWith(caches.match(req, { cacheName: CACHE }).then((hit) => hit ?? fetch(req)))
})
