// The chat widget's own Vite config, two builds into app/static/widget/ (served by app/api/widget.py):
//   --mode app     the iframe app: index.html + content-hashed assets under /widget/assets/
//   --mode loader  widget.js: the tiny script a shop pastes (one IIFE, no imports, no CSS file)
// The app build runs first and empties the folder; the loader build adds widget.js beside it.
import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vite'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const outDir = here('../../app/static/widget')

export default defineConfig(({ mode }) => {
  const shared = {
    resolve: { alias: { '@shared': here('../shared') } },
    logLevel: 'warn' as const,
  }
  if (mode === 'loader') {
    return {
      ...shared,
      publicDir: false as const,
      build: {
        outDir,
        emptyOutDir: false,
        sourcemap: false,
        target: 'es2019',
        lib: {
          entry: here('src/loader.ts'),
          name: 'SwitchboardWidgetLoader',
          formats: ['iife' as const],
          fileName: () => 'widget.js',
        },
      },
    }
  }
  return {
    ...shared,
    root: here('.'),
    base: '/widget/',
    publicDir: false as const,
    build: {
      outDir,
      emptyOutDir: true,
      sourcemap: false,
      target: 'es2020',
      modulePreload: { polyfill: false },
      assetsInlineLimit: 0,
    },
    server: {
      proxy: {
        '/api': process.env.SWITCHBOARD_BACKEND ?? 'http://127.0.0.1:5000',
        '/socket.io': { target: process.env.SWITCHBOARD_BACKEND ?? 'http://127.0.0.1:5000', ws: true },
      },
    },
  }
})
