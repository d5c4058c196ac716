import { buildPages } from './harness.ts'

/** Builds the pages once for the whole browser suite (vite build into an ignored folder). */
export default async function setup(): Promise<void> {
  await buildPages()
}
