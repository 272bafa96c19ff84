/** The list of verification results, the same in the message and auditor views. */
import { h } from './dom.js';
import { t, tk, type MessageId } from './i18n.js';
import type { Check } from './verify.js';

export function checkList(checks: ReadonlyArray<{ name: string; check: Check }>): HTMLElement {
  return h(
    'ul',
    { class: 'checks' },
    ...checks.map(({ name, check }) =>
      h(
        'li',
        { class: check.ok ? 'ok' : 'bad', 'data-check': name, 'data-ok': String(check.ok) },
        h('span', { class: 'mark', 'aria-hidden': 'true' }, check.ok ? '✓' : '✗'),
        h('strong', {}, tk('verify.name', name)),
        ' ',
        h('span', { class: 'visually-hidden' }, check.ok ? t('verify.passed') : t('verify.failed')),
        t(check.reason as MessageId, check.params ?? {}),
      ),
    ),
  );
}
