/**
 * The officer's inbox (protocol §5.3, §5.5): most urgent first, live countdowns to
 * each deadline, emergency freeze requests marked and announced as they arrive.
 */
import type { Api, Summary } from './api.js';
import { clear, h } from './dom.js';
import { countdown, dateTime, t, tk } from './i18n.js';
import { MESSAGE_TYPES, PRIORITIES } from './vocabulary.js';

const PRIORITY_RANK: Record<string, number> = { emergency: 0, urgent: 1, routine: 2 };
const TYPES = MESSAGE_TYPES;

/** 'open' is the default view: everything not yet finally decided. */
const STATUSES = ['open', 'delivered', 'claimed', 'decided', 'all'];

export interface InboxState {
  type: string;
  priority: string;
  status: string;
}

export function deadlineOf(m: {
  deadline?: string | null;
  respondBy?: string | null;
}): string | null | undefined {
  return m.deadline !== undefined ? m.deadline : m.respondBy;
}

function byUrgency(a: Summary, b: Summary): number {
  const p = (PRIORITY_RANK[a.priority] ?? 3) - (PRIORITY_RANK[b.priority] ?? 3);
  if (p !== 0) return p;
  const da = deadlineOf(a) ?? null;
  const db = deadlineOf(b) ?? null;
  if (da !== db) {
    if (da === null) return 1;
    if (db === null) return -1;
    return Date.parse(da) - Date.parse(db);
  }
  return Date.parse(a.createdAt) - Date.parse(b.createdAt);
}

export function isEmergencyFreeze(m: { type: string; priority: string }): boolean {
  return m.type === 'funds.freeze' && m.priority === 'emergency';
}

export class Inbox {
  readonly el = h('section', { class: 'inbox', 'aria-labelledby': 'inbox-title' });
  state: InboxState = { type: '', priority: '', status: 'open' };
  items: Summary[] = [];
  private error = '';

  constructor(
    private readonly api: Api,
    private readonly open: (id: string) => void,
  ) {}

  async refresh(): Promise<void> {
    const { type, priority, status } = this.state;
    try {
      const page = await this.api.inbox({
        type,
        priority,
        status,
      });
      this.items = page.items
        .filter((m) => status !== 'open' || m.status !== 'decided')
        .sort(byUrgency);
      this.error = '';
    } catch (e) {
      this.error = (e as { code?: string }).code ?? 'INTERNAL';
    }
    this.render();
  }

  render(): void {
    const select = (
      key: keyof InboxState,
      label: string,
      values: string[],
      name: (v: string) => string,
      allLabel?: string,
    ) => {
      const id = `filter-${key}`;
      const s = h(
        'select',
        {
          id,
          onchange: (e: Event) => {
            this.state = { ...this.state, [key]: (e.target as HTMLSelectElement).value };
            void this.refresh();
          },
        },
        ...(allLabel === undefined ? [] : [h('option', { value: '' }, allLabel)]),
        ...values.map((v) => h('option', { value: v }, name(v))),
      );
      s.value = this.state[key];
      return h('div', { class: 'filter' }, h('label', { for: id }, label), s);
    };

    const rows = this.items.map((m) => this.row(m));
    clear(
      this.el,
      h('h2', { id: 'inbox-title' }, t('inbox.title')),
      h(
        'div',
        { class: 'filters', role: 'group', 'aria-label': t('inbox.filters') },
        select('type', t('inbox.filter.type'), TYPES, (v) => tk('type', v), t('inbox.filter.all')),
        select(
          'priority',
          t('inbox.filter.priority'),
          PRIORITIES,
          (v) => tk('priority', v),
          t('inbox.filter.all'),
        ),
        select('status', t('inbox.filter.status'), STATUSES, (v) => tk('status', v)),
      ),
      this.error ? h('p', { class: 'error', role: 'alert' }, tk('error', this.error)) : null,
      this.items.length === 0 && !this.error
        ? h('p', { class: 'empty' }, t('inbox.empty'))
        : h(
            'table',
            { class: 'queue' },
            h('caption', { class: 'visually-hidden' }, t('inbox.caption')),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...[
                  'inbox.col.priority',
                  'inbox.col.type',
                  'inbox.col.from',
                  'inbox.col.caseRef',
                  'inbox.col.deadline',
                  'inbox.col.status',
                  'inbox.col.claim',
                ].map((k) => h('th', { scope: 'col' }, t(k as Parameters<typeof t>[0]))),
              ),
            ),
            h('tbody', {}, ...rows),
          ),
    );
  }

  private row(m: Summary): HTMLTableRowElement {
    const deadline = deadlineOf(m);
    const emergency = isEmergencyFreeze(m);
    const cls = [
      'row',
      `priority-${m.priority}`,
      emergency ? 'emergency-freeze' : '',
      m.overdue ? 'overdue' : '',
      m.dueSoon ? 'due-soon' : '',
    ]
      .filter(Boolean)
      .join(' ');
    return h(
      'tr',
      { class: cls, 'data-id': m.id },
      h(
        'td',
        {},
        h('span', { class: `badge badge-${m.priority}` }, tk('priority', m.priority)),
        emergency ? h('span', { class: 'badge badge-freeze' }, t('inbox.emergencyFreeze')) : null,
      ),
      h(
        'td',
        {},
        h(
          'button',
          { class: 'link open-message', type: 'button', onclick: () => this.open(m.id) },
          tk('type', m.type),
        ),
      ),
      h('td', {}, m.from),
      h('td', { class: 'mono' }, m.caseRef),
      h(
        'td',
        {},
        deadline
          ? h(
              'span',
              { class: 'countdown', 'data-deadline': deadline, title: dateTime(deadline) },
              countdown(deadline),
            )
          : h('span', { class: 'muted' }, t('inbox.noDeadline')),
        m.overdue ? h('span', { class: 'badge badge-overdue' }, t('inbox.overdue')) : null,
        m.dueSoon && !m.overdue
          ? h('span', { class: 'badge badge-due-soon' }, t('inbox.dueSoon'))
          : null,
      ),
      h('td', {}, tk('status', m.status), m.decision ? ` · ${tk('decision', m.decision)}` : ''),
      h('td', {}, m.claim ? (m.claim.name ?? t('inbox.claimed')) : ''),
    );
  }
}

/** Every second, each countdown on the page is rewritten from its deadline. */
export function tickCountdowns(root: ParentNode): void {
  const now = Date.now();
  for (const el of root.querySelectorAll<HTMLElement>('[data-deadline]')) {
    el.textContent = countdown(el.dataset['deadline']!, now);
    el.classList.toggle('past', Date.parse(el.dataset['deadline']!) < now);
  }
}
