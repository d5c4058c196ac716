/**
 * Whether the engine may reach the edge: the app's own switch (`setOnline`) and the network as the
 * browser reports it (`navigator.onLine` and the online/offline events). Online only when both say so.
 */
export interface Connectivity {
  online(): boolean
  /** The app's "go offline" switch. */
  setOnline(online: boolean): void
}

export interface ConnectivityDeps {
  /** Aborting it drops the browser event listeners. */
  signal: AbortSignal
  /** After every change of either input (even one that leaves `online()` as it was). */
  onChange(): void
}

function browserOnline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator
  return nav?.onLine !== false
}

export function createConnectivity(d: ConnectivityDeps): Connectivity {
  let appOnline = true
  let netOnline = browserOnline()
  const setNet = (v: boolean): void => {
    netOnline = v
    d.onChange()
  }
  // A window or worker scope tells us about the network.
  if (typeof (globalThis as { addEventListener?: unknown }).addEventListener === 'function') {
    globalThis.addEventListener('online', () => setNet(true), { signal: d.signal })
    globalThis.addEventListener('offline', () => setNet(false), { signal: d.signal })
  }
  return {
    online: () => appOnline && netOnline,
    setOnline(v) {
      appOnline = v
      d.onChange()
    },
  }
}
