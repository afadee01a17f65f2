// One Vite config, one build per entry: `vite build --mode console` (and later `--mode widget`).
// Each entry has its own root, public base and output folder, so the console and the widget share
// only what they import from shared/ (the API client types and the event names).
import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

interface Target {
  root: string
  base: string
  outDir: string
}

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

const targets: Record<string, Target> = {
  console: { root: 'console', base: '/console/', outDir: 'dist/console' },
}

export default defineConfig(({ command, mode }) => {
  const target = targets[mode] ?? targets.console
  const backend = process.env.SWITCHBOARD_BACKEND ?? 'http://127.0.0.1:5000'
  return {
    root: here(target.root),
    // The dev server serves the app at / so /app/* deep links fall back to index.html; builds live under base.
    base: command === 'build' ? target.base : '/',
    plugins: [vue()],
    resolve: {
      alias: {
        '@shared': here('shared'),
        '@console': here('console/src'),
      },
    },
    define: {
      __VUE_OPTIONS_API__: 'false',
      __VUE_PROD_DEVTOOLS__: 'false',
      __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
    },
    build: {
      outDir: here(target.outDir),
      emptyOutDir: true,
      sourcemap: true,
      chunkSizeWarningLimit: 700,
    },
    server: {
      // `npm run dev` proxies the API and the websocket to a running Flask (make run).
      proxy: {
        '/api': backend,
        '/socket.io': { target: backend, ws: true },
      },
    },
  }
})
