// Print the widget's built sizes, raw and gzipped (the loader must stay within 5 KB gzipped).
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const out = fileURLToPath(new URL('../../../app/static/widget/', import.meta.url))
const LOADER_LIMIT = 5 * 1024
const files = ['widget.js', 'index.html', ...readdirSync(join(out, 'assets')).map((name) => `assets/${name}`)]
let appTotal = 0
for (const file of files) {
  const data = readFileSync(join(out, file))
  const gz = gzipSync(data, { level: 9 }).length
  if (file !== 'widget.js') appTotal += gz
  console.log(`widget ${file.padEnd(34)} ${String(statSync(join(out, file)).size).padStart(7)} B  ${String(gz).padStart(6)} B gzipped`)
}
console.log(`widget iframe app total: ${appTotal} B gzipped`)
const loader = gzipSync(readFileSync(join(out, 'widget.js')), { level: 9 }).length
if (loader > LOADER_LIMIT) {
  console.error(`widget.js is ${loader} B gzipped, over the ${LOADER_LIMIT} B budget`)
  process.exit(1)
}
