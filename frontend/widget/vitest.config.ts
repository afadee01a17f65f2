import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vitest/config'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: { alias: { '@shared': here('../shared') } },
  test: {
    root: here('.'),
    environment: 'node',
    include: ['tests/**/*.spec.ts'],
    restoreMocks: true,
  },
})
