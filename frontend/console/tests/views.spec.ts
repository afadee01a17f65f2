import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises } from '@vue/test-utils'
import { api } from '@console/api'
import AdminView from '@console/views/AdminView.vue'
import SupervisorView from '@console/views/SupervisorView.vue'
import { useDirectoryStore } from '@console/stores/directory'
import { mountWith, user } from './helpers'

afterEach(() => {
  document.body.innerHTML = ''
})

describe('SupervisorView', () => {
  it('shows topic volumes as a chart and a table, and the spike alerts', async () => {
    const summary = { count: 3, median_seconds: 600, p90_seconds: 3900 }
    const report = vi.spyOn(api, 'topicReport').mockResolvedValue({
      from: '2030-01-01T00:00:00+00:00', to: '2030-01-03T00:00:00+00:00', interval: 'day', timezone: 'UTC',
      buckets: ['2030-01-01T00:00:00+00:00', '2030-01-02T00:00:00+00:00'],
      totals: { counts: [4, 7], total: 11, previous_total: 10, change: 0.1 },
      topics: [
        { id: 1, name: 'Delivery', parent_id: null, colour: '#00f', archived: false, counts: [4, 6], total: 10, previous_total: 5, change: 1 },
        { id: 2, name: 'Payment', parent_id: null, colour: '#f00', archived: false, counts: [0, 1], total: 1, previous_total: 5, change: -0.8 },
      ],
      times: {
        overall: { conversations: 11, first_response: summary, resolution: summary },
        by_topic: [], by_channel: [],
        by_agent: [{ agent_id: null, name: 'Ola', conversations: 4, first_response: summary, resolution: summary }],
      },
    })
    vi.spyOn(api, 'alerts').mockResolvedValue([
      {
        id: 9, topic_id: 1, topic: { id: 1, name: 'Delivery', parent_id: null, colour: '#00f' }, status: 'open',
        window_start: null, window_end: null, detected_at: '2030-01-02T10:00:00Z', ended_at: null, observed: 6,
        expected: 1.5, ratio: 4, acknowledged_at: null, acknowledged_by_id: null,
      },
    ])
    const { wrapper } = mountWith(SupervisorView, { global: { stubs: { TopicChart: { template: '<div class="chart-stub" />' } } } })
    await flushPromises()
    expect(report).toHaveBeenCalledWith(expect.objectContaining({ interval: 'day' }))
    expect(wrapper.find('.chart-stub').exists()).toBe(true)
    const cells = wrapper.findAll('[data-testid="topic-table"] tbody td').map((cell) => cell.text())
    expect(cells).toEqual(['Delivery', '10', '5', '+100%', 'Payment', '1', '5', '-80%'])
    expect(wrapper.find('[data-testid="kpi-total"]').text()).toBe('11')
    expect(wrapper.text()).toContain('10m')
    expect(wrapper.text()).toContain('90% within 1h 5m')
    expect(wrapper.text()).toContain('Ola')
    expect(wrapper.find('.alerts').text()).toContain('Delivery: 6 conversations, 1.5 expected')
    expect(wrapper.find('a[download]').attributes('href')).toContain('format=csv')
    await wrapper.find('[data-testid="report-days"]').setValue(7)
    await flushPromises()
    expect(report).toHaveBeenCalledTimes(2)
  })

  it('says so when the report cannot be loaded', async () => {
    vi.spyOn(api, 'topicReport').mockRejectedValue(new Error('boom'))
    vi.spyOn(api, 'alerts').mockResolvedValue([])
    const { wrapper } = mountWith(SupervisorView)
    await flushPromises()
    expect(wrapper.find('[role="alert"]').text()).toContain('The report could not be loaded')
    expect(wrapper.text()).toContain('No alerts.')
  })
})

describe('AdminView', () => {
  it('creates a canned response and lists the users', async () => {
    const created = vi.spyOn(api, 'createCanned').mockResolvedValue({
      id: 1, shortcut: 'hello', title: 'Hello', body: 'Hi {{customer.first_name}}', created_at: null, updated_at: null,
    })
    for (const name of ['users', 'teams', 'topics', 'channels', 'canned'] as const) vi.spyOn(api, name).mockResolvedValue([])
    const { wrapper, router } = mountWith(AdminView)
    useDirectoryStore().users = [user({ name: 'Ola Nowak', email: 'ola@example.com' })]
    await router.push('/admin/users')
    await flushPromises()
    expect(wrapper.text()).toContain('ola@example.com')
    await router.push('/admin/canned')
    await flushPromises()
    const inputs = wrapper.findAll('form.stack-form input')
    await inputs[0].setValue('hello')
    await inputs[1].setValue('Hello')
    await wrapper.find('form.stack-form textarea').setValue('Hi {{customer.first_name}}')
    await wrapper.find('form.stack-form').trigger('submit')
    await flushPromises()
    expect(created).toHaveBeenCalledWith({ shortcut: 'hello', title: 'Hello', body: 'Hi {{customer.first_name}}' })
  })
})
