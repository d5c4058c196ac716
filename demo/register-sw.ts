/** True in `vite build` output (demo/vite.config.ts). */
declare const __EDDY_SERVICE_WORKER__: boolean

/**
 * Registers the service worker that makes the demo open offline after a first visit (production
 * builds only: the dev server serves modules that are not in the precache list). Reports "ready"
 * once a worker with the complete precache is active.
 */
export function registerServiceWorker(onState: (state: string) => void): void {
  if (!__EDDY_SERVICE_WORKER__ || !('serviceWorker' in navigator)) {
    onState('off (dev build)')
    return
  }
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).then(
    async (reg) => {
      onState(reg.active ? 'ready' : 'installing')
      await navigator.serviceWorker.ready
      onState('ready')
    },
    (e: unknown) => onState(`failed: ${e instanceof Error ? e.message : String(e)}`),
  )
}
