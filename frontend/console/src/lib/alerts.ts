// How a spike alert reads to a supervisor, in their language.
import type { Alert } from '@shared/types'
import { i18n } from '../i18n'

export function alertText(alert: Alert): string {
  const t = i18n.global.t
  const topic = alert.topic?.name ?? t('supervisor.unknownTopic')
  return t('supervisor.alertText', {
    topic,
    observed: i18n.global.n(alert.observed, 'integer'),
    expected: i18n.global.n(Math.round(alert.expected * 10) / 10),
  }, alert.observed)
}
