// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest'
import { appendText } from '../src/text'

describe('appendText', () => {
  it('keeps markup as text and turns only http(s) URLs into safe links', () => {
    const parent = document.createElement('div')
    appendText(parent, '<img src=x onerror=alert(1)> see https://shop.example/orders/1. javascript:alert(1)')
    expect(parent.querySelector('img')).toBeNull()
    const links = parent.querySelectorAll('a')
    expect(links).toHaveLength(1)
    expect(links[0].getAttribute('href')).toBe('https://shop.example/orders/1')
    expect(links[0].rel).toContain('noopener')
    expect(parent.textContent).toContain('<img src=x onerror=alert(1)>')
  })
})
