/**
 * One message, rendered for a person by type (protocol §2.3), with its verification
 * panel, the review actions (protocol §5.4) and the case thread across both agencies.
 * Content is shown exactly as sent: only labels are translated.
 */
import { ApiError, type Api, type MessageView, type Session, type Summary } from './api.js';
import { checkList } from './checks.js';
import { clear, h } from './dom.js';
import {
  bytes,
  countdown,
  dateOnly,
  dateTime,
  locale,
  number,
  t,
  tk,
  type MessageId,
} from './i18n.js';
import { deadlineOf } from './inbox.js';
import { DECISIONS as VOCAB_DECISIONS } from './vocabulary.js';
import type { Trust } from './trust.js';
import { signedEnvelope, verifyMessage, type MessageVerdict } from './verify-message.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

/** Decision statuses an officer may send (protocol §2.3), and which need a reason. */
// 'received' is an acknowledgement an agency system sends; officers decide.
const DECISIONS = VOCAB_DECISIONS.filter((d) => d !== 'received');
const NEEDS_REASON = new Set(['rejected', 'needs-info']);

export class MessagePage {
  readonly el = h('article', { class: 'message', 'aria-labelledby': 'message-title' });
  private m: MessageView | undefined;
  private verdict: MessageVerdict | undefined;
  private thread: Summary[] = [];
  private notice = '';
  private error = '';
  private personsQuery = '';
  /** The decision being written survives re-renders (an event, a language switch). */
  private draft = { id: '', status: DECISIONS[0]!, reason: '', missingReason: false };
  private envelope: Obj | undefined;
  /** The rendered body, rebuilt only for another message or language (1,000-row tables). */
  private bodyCache: { key: string; el: HTMLElement } | undefined;

  constructor(
    private readonly api: Api,
    private readonly session: Session,
    private readonly trust: Trust,
    private readonly back: () => void,
    private readonly open: (id: string) => void,
  ) {}

  async load(id: string, focus = true): Promise<void> {
    // A background reload (an event about this message) keeps the page as it is until done.
    if (focus || this.m?.id !== id) {
      clear(this.el, h('p', { class: 'muted', role: 'status' }, t('message.loading')));
    }
    if (this.draft.id !== id) {
      this.draft = { id, status: DECISIONS[0]!, reason: '', missingReason: false };
    }
    try {
      this.m = await this.api.message(id);
      if (this.bodyCache && !this.bodyCache.key.startsWith(id + '|')) this.personsQuery = '';
      this.verdict = undefined;
      // What is shown is what was signed; the gateway's parsed copy only if the bytes are not a JWS.
      this.envelope = signedEnvelope(this.m.jws);
      this.render();
      const [verdict, thread] = await Promise.all([
        verifyMessage(this.api, this.m, this.trust),
        this.api.thread(id).catch(() => ({ items: [] as Summary[] })),
      ]);
      this.verdict = verdict;
      this.thread = thread.items;
    } catch (e) {
      this.error = e instanceof ApiError ? e.code : 'INTERNAL';
    }
    this.render();
    if (focus) this.el.querySelector<HTMLElement>('#message-title')?.focus();
  }

  render(): void {
    const active = document.activeElement;
    const focusedId = active && this.el.contains(active) ? active.id : '';
    this.build();
    if (focusedId) this.el.querySelector<HTMLElement>(`#${CSS.escape(focusedId)}`)?.focus();
  }

  private build(): void {
    const m = this.m;
    if (!m) {
      clear(
        this.el,
        this.backButton(),
        h('p', { class: 'error', role: 'alert' }, tk('error', this.error)),
      );
      return;
    }
    const env = this.envelope ?? m.envelope;
    const deadline = deadlineOf(m) ?? envelopeDeadline(env);
    clear(
      this.el,
      this.backButton(),
      h(
        'header',
        { class: 'message-head' },
        h(
          'h2',
          { id: 'message-title', tabindex: '-1' },
          tk('type', str(env['type'])),
          ' · ',
          h('span', { class: 'mono' }, str(env['caseRef'])),
        ),
        h(
          'dl',
          { class: 'facts' },
          ...fact(t('message.from'), str(env['from'])),
          ...fact(t('message.to'), str(env['to'])),
          ...fact(
            t('message.priority'),
            h(
              'span',
              { class: `badge badge-${str(env['priority'])}` },
              tk('priority', str(env['priority'])),
            ),
          ),
          ...fact(t('message.createdAt'), dateTime(str(env['createdAt']))),
          ...(deadline
            ? fact(
                t('message.deadline'),
                h(
                  'span',
                  {},
                  dateTime(deadline),
                  ' — ',
                  h('span', { class: 'countdown', 'data-deadline': deadline }, countdown(deadline)),
                ),
              )
            : []),
          ...fact(
            t('message.status'),
            h(
              'span',
              { id: 'message-status' },
              tk('status', m.status),
              m.decision ? ` · ${tk('decision', m.decision)}` : '',
            ),
          ),
          ...(m.claim ? fact(t('message.claimedBy'), claimText(m)) : []),
          ...(env['handling']
            ? fact(t('message.handling'), tk('handling', str(env['handling'])))
            : []),
          ...fact(t('message.id'), h('span', { class: 'mono' }, m.id)),
        ),
      ),
      this.notice ? h('p', { class: 'notice', role: 'status' }, this.notice) : null,
      this.error ? h('p', { class: 'error', role: 'alert' }, tk('error', this.error)) : null,
      this.actions(m),
      this.verificationPanel(),
      h(
        'section',
        { class: 'content', 'aria-labelledby': 'content-title' },
        h('h3', { id: 'content-title' }, t('message.content')),
        h('p', { class: 'muted small' }, t('message.asSent')),
        this.cachedBody(m.id, env),
      ),
      this.timeline(m),
    );
  }

  private backButton(): HTMLElement {
    return h(
      'button',
      { type: 'button', class: 'back', onclick: () => this.back() },
      t('message.back'),
    );
  }

  // ------------------------------------------------------------ actions

  private actions(m: MessageView): HTMLElement | null {
    const to = (this.envelope ?? m.envelope)['to'];
    if (this.session.role !== 'officer' || to !== this.session.agency) return null;
    const mine = m.claim?.subject === this.session.subject;
    const claimable = m.status === 'delivered';
    const section = h(
      'section',
      { class: 'actions', 'aria-labelledby': 'actions-title' },
      h('h3', { id: 'actions-title' }, t('actions.title')),
    );
    if (claimable) {
      section.append(
        h(
          'button',
          {
            type: 'button',
            id: 'claim',
            class: 'primary',
            onclick: () => this.act(() => this.api.claim(m.id), 'actions.claimed'),
          },
          t('actions.claim'),
        ),
      );
    }
    if (mine) {
      const statusSel = h(
        'select',
        { id: 'decision-status', required: true },
        ...DECISIONS.map((d) => h('option', { value: d }, tk('decision', d))),
      );
      statusSel.value = this.draft.status;
      const reason = h('textarea', { id: 'decision-reason', rows: 3, maxlength: 4000 });
      reason.value = this.draft.reason;
      if (this.draft.missingReason) reason.setAttribute('aria-invalid', 'true');
      reason.addEventListener('input', () => {
        this.draft.reason = reason.value;
      });
      const hint = h('p', { id: 'reason-hint', class: 'small muted' }, t('actions.reasonHint'));
      reason.setAttribute('aria-describedby', 'reason-hint');
      const syncRequired = () => {
        this.draft.status = statusSel.value;
        reason.required = NEEDS_REASON.has(statusSel.value);
      };
      statusSel.addEventListener('change', syncRequired);
      syncRequired();
      const form = h(
        'form',
        {
          class: 'decide',
          novalidate: true,
          onsubmit: (e: Event) => {
            e.preventDefault();
            const status = statusSel.value;
            const text = reason.value.trim();
            if (NEEDS_REASON.has(status) && text === '') {
              this.error = '';
              this.notice = '';
              this.draft.missingReason = true;
              this.render();
              this.el.querySelector<HTMLElement>('#decision-reason')?.focus();
              return;
            }
            this.draft.missingReason = false;
            void this.act(
              () => this.api.decide(m.id, status, text || undefined),
              'actions.decided',
            );
          },
        },
        h(
          'div',
          { class: 'field' },
          h('label', { for: 'decision-status' }, t('actions.decision')),
          statusSel,
        ),
        h(
          'div',
          { class: 'field' },
          h('label', { for: 'decision-reason' }, t('actions.reason')),
          reason,
          this.draft.missingReason
            ? h('p', { class: 'field-error', role: 'alert' }, t('actions.reasonRequired'))
            : null,
          hint,
        ),
        h(
          'div',
          { class: 'buttons' },
          h('button', { type: 'submit', id: 'decide', class: 'primary' }, t('actions.send')),
          h(
            'button',
            {
              type: 'button',
              id: 'release',
              onclick: () => this.act(() => this.api.release(m.id), 'actions.released'),
            },
            t('actions.release'),
          ),
        ),
      );
      section.append(form);
    } else if (m.claim) {
      section.append(h('p', {}, t('actions.heldBy', { name: claimText(m) })));
    } else if (!claimable) {
      section.append(h('p', { class: 'muted' }, t('actions.none')));
    }
    return section;
  }

  private async act(call: () => Promise<unknown>, done: MessageId): Promise<void> {
    const id = this.m!.id;
    this.error = '';
    try {
      await call();
      this.notice = t(done);
      if (done === 'actions.decided')
        this.draft = { ...this.draft, reason: '', missingReason: false };
    } catch (e) {
      this.notice = '';
      this.error = e instanceof ApiError ? e.code : 'INTERNAL';
    }
    await this.load(id, false);
    this.el.querySelector<HTMLElement>(this.error ? '.error' : '#actions-title')?.focus();
  }

  // ------------------------------------------------------------ verification

  private verificationPanel(): HTMLElement {
    const v = this.verdict;
    const all = v ? v.checks.every((c) => c.check.ok) : undefined;
    return h(
      'section',
      {
        class: `verification ${all === undefined ? 'pending' : all ? 'ok' : 'bad'}`,
        id: 'verification',
        'data-verdict': all === undefined ? 'pending' : all ? 'ok' : 'bad',
        'aria-labelledby': 'verification-title',
        'aria-live': 'polite',
      },
      h('h3', { id: 'verification-title' }, t('verify.title')),
      h(
        'p',
        { class: 'summary' },
        all === undefined ? t('verify.running') : all ? t('verify.allGood') : t('verify.someBad'),
      ),
      v ? checkList(v.checks) : null,
      v ? h('p', { class: 'small muted mono' }, t('verify.digest', { digest: v.digest })) : null,
      h('p', { class: 'small muted' }, t('verify.inBrowser')),
    );
  }

  // ------------------------------------------------------------ bodies by type

  private body(type: string, b: Obj): HTMLElement {
    switch (type) {
      case 'evidence.request':
        return this.evidenceRequest(b);
      case 'evidence.transfer':
        return this.evidenceTransfer(b);
      case 'funds.freeze':
        return this.fundsFreeze(b);
      case 'suspect.handover':
        return this.handover(b);
      case 'status.update':
        return this.statusUpdate(b);
      default:
        return rest(b, []);
    }
  }

  private cachedBody(id: string, env: Obj): HTMLElement {
    const key = `${id}|${locale()}|${this.envelope ? 'signed' : 'stored'}`;
    if (this.bodyCache?.key !== key) {
      this.bodyCache = { key, el: this.body(str(env['type']), obj(env['body'])) };
    }
    return this.bodyCache.el;
  }

  private evidenceRequest(b: Obj): HTMLElement {
    const offence = obj(b['offence']);
    return h(
      'div',
      { class: 'body' },
      h(
        'dl',
        { class: 'facts' },
        ...fact(t('body.legalBasis'), asSent(b['legalBasis'])),
        ...fact(t('body.offenceCategory'), tk('offence', str(offence['category']))),
        ...fact(t('body.offenceSummary'), asSent(offence['summary'])),
      ),
      h('h4', {}, t('body.items')),
      h(
        'ol',
        { class: 'items' },
        ...arr(b['items']).map((raw) => {
          const it = obj(raw);
          return h(
            'li',
            {},
            h('strong', {}, tk('kind', str(it['kind']))),
            it['description'] ? h('p', {}, asSent(it['description'])) : null,
            h(
              'table',
              { class: 'compact' },
              h('caption', { class: 'visually-hidden' }, t('body.identifiers')),
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  h('th', { scope: 'col' }, t('body.idType')),
                  h('th', { scope: 'col' }, t('body.idValue')),
                ),
              ),
              h(
                'tbody',
                {},
                ...arr(it['identifiers']).map((x) => {
                  const id = obj(x);
                  return h(
                    'tr',
                    {},
                    h('td', {}, tk('idtype', str(id['type']))),
                    h('td', { class: 'mono' }, asSent(id['value'])),
                  );
                }),
              ),
            ),
          );
        }),
      ),
      rest(b, ['legalBasis', 'offence', 'items']),
    );
  }

  private evidenceTransfer(b: Obj): HTMLElement {
    return h(
      'div',
      { class: 'body' },
      h('h4', {}, t('body.exhibits')),
      h(
        'ol',
        { class: 'items' },
        ...arr(b['items']).map((raw) => {
          const it = obj(raw);
          const size = Number(it['size']);
          return h(
            'li',
            {},
            h('strong', { class: 'mono' }, asSent(it['exhibitNo'])),
            ' ',
            asSent(it['description']),
            h(
              'dl',
              { class: 'facts' },
              ...fact(t('body.sha256'), h('code', { class: 'hash' }, asSent(it['sha256']))),
              ...fact(
                t('body.size'),
                Number.isFinite(size) ? `${bytes(size)} (${number(size)})` : asSent(it['size']),
              ),
            ),
            h('h5', {}, t('body.custody')),
            h(
              'ol',
              { class: 'custody' },
              ...arr(it['custody']).map((c) => {
                const e = obj(c);
                return h(
                  'li',
                  {},
                  h('time', { datetime: str(e['at']) }, dateTime(str(e['at']))),
                  ' — ',
                  h('strong', {}, tk('custody', str(e['action']))),
                  ' — ',
                  asSent(e['by']),
                  e['location'] ? ` (${str(e['location'])})` : '',
                );
              }),
            ),
          );
        }),
      ),
      rest(b, ['items']),
    );
  }

  private fundsFreeze(b: Obj): HTMLElement {
    const executeBy = str(b['executeBy']);
    return h(
      'div',
      { class: 'body' },
      h(
        'dl',
        { class: 'facts' },
        ...fact(
          t('body.executeBy'),
          h(
            'span',
            {},
            dateTime(executeBy),
            ' — ',
            h(
              'strong',
              { class: 'countdown', 'data-deadline': executeBy, id: 'execute-by' },
              countdown(executeBy),
            ),
          ),
        ),
        ...fact(t('body.legalBasis'), asSent(b['legalBasis'])),
        ...fact(t('body.reason'), asSent(b['reason'])),
      ),
      h('h4', {}, t('body.accounts')),
      h(
        'table',
        { class: 'compact' },
        h('caption', { class: 'visually-hidden' }, t('body.accounts')),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['body.institution', 'body.accountId', 'body.holder', 'body.amount'].map((k) =>
              h('th', { scope: 'col' }, t(k as MessageId)),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          ...arr(b['accounts']).map((raw) => {
            const a = obj(raw);
            const amount = obj(a['amount']);
            return h(
              'tr',
              {},
              h('td', {}, asSent(a['institution'])),
              h('td', { class: 'mono' }, asSent(a['accountId'])),
              h('td', {}, asSent(a['holderName'])),
              h(
                'td',
                {},
                amount['value'] ? `${str(amount['value'])} ${str(amount['currency'])}` : '',
              ),
            );
          }),
        ),
      ),
      rest(b, ['executeBy', 'legalBasis', 'reason', 'accounts']),
    );
  }

  private handover(b: Obj): HTMLElement {
    const ho = obj(b['handover']);
    const persons = arr(b['persons']).map(obj);
    const tbody = h('tbody', {});
    const rows: Array<{ row: HTMLTableRowElement; hay: string }> = [];
    for (const p of persons) {
      const docs = arr(p['documents']).map(obj);
      const row = h(
        'tr',
        {},
        h('td', {}, asSent(p['surname'])),
        h('td', {}, asSent(p['givenNames'])),
        h('td', {}, dateOnly(str(p['dateOfBirth']))),
        h('td', {}, asSent(p['nationality'])),
        h(
          'td',
          { class: 'mono' },
          docs.map((d) => `${tk('doctype', str(d['type']))} ${str(d['number'])}`).join('; '),
        ),
      );
      rows.push({
        row,
        hay: [
          p['surname'],
          p['givenNames'],
          p['dateOfBirth'],
          p['nationality'],
          ...docs.map((d) => d['number']),
        ]
          .map(str)
          .join(' ')
          .toLocaleLowerCase(),
      });
    }
    tbody.append(...rows.map((r) => r.row));
    const count = h('p', { id: 'persons-count', class: 'small', role: 'status' });
    const apply = (q: string) => {
      const needle = q.trim().toLocaleLowerCase();
      let shown = 0;
      for (const r of rows) {
        const hit = needle === '' || r.hay.includes(needle);
        r.row.hidden = !hit;
        if (hit) shown++;
      }
      count.textContent = t('body.personsShown', {
        shown: number(shown),
        total: number(rows.length),
      });
    };
    const search = h('input', {
      type: 'search',
      id: 'persons-search',
      autocomplete: 'off',
      oninput: (e: Event) => {
        this.personsQuery = (e.target as HTMLInputElement).value;
        apply(this.personsQuery);
      },
    });
    search.value = this.personsQuery;
    apply(this.personsQuery);
    return h(
      'div',
      { class: 'body' },
      h(
        'dl',
        { class: 'facts' },
        ...fact(t('body.place'), asSent(ho['place'])),
        ...fact(t('body.at'), dateTime(str(ho['at']))),
        ...fact(t('body.handingAgency'), asSent(ho['handingAgency'])),
        ...fact(t('body.receivingAgency'), asSent(ho['receivingAgency'])),
      ),
      h('h4', {}, t('body.persons', { n: number(persons.length) })),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'persons-search' }, t('body.searchPersons')),
        search,
      ),
      count,
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          { class: 'compact persons', id: 'persons' },
          h(
            'caption',
            { class: 'visually-hidden' },
            t('body.persons', { n: number(persons.length) }),
          ),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...[
                'body.surname',
                'body.givenNames',
                'body.dateOfBirth',
                'body.nationality',
                'body.documents',
              ].map((k) => h('th', { scope: 'col' }, t(k as MessageId))),
            ),
          ),
          tbody,
        ),
      ),
      h('h4', {}, t('body.escorts')),
      h(
        'ul',
        {},
        ...arr(b['escorts']).map((e) =>
          h('li', {}, asSent(obj(e)['name']), ' — ', asSent(obj(e)['agency'])),
        ),
      ),
      rest(b, ['handover', 'persons', 'escorts']),
    );
  }

  private statusUpdate(b: Obj): HTMLElement {
    const by = obj(b['decidedBy']);
    return h(
      'div',
      { class: 'body' },
      h(
        'dl',
        { class: 'facts' },
        ...fact(t('body.decision'), tk('decision', str(b['status']))),
        ...(b['reason'] ? fact(t('body.reason'), asSent(b['reason'])) : []),
        ...(b['decidedBy']
          ? fact(t('body.decidedBy'), `${str(by['name'])} (${str(by['subject']).slice(0, 19)}…)`)
          : []),
      ),
      rest(b, ['status', 'reason', 'decidedBy']),
    );
  }

  // ------------------------------------------------------------ thread

  private timeline(m: MessageView): HTMLElement {
    const events: Array<{ at: string; node: HTMLElement }> = [];
    for (const s of this.thread) {
      const current = s.id === m.id;
      events.push({
        at: s.acceptedAt,
        node: h(
          'li',
          {
            class: `msg ${s.from === this.session.agency ? 'ours' : 'theirs'}${current ? ' current' : ''}`,
          },
          h('time', { datetime: s.acceptedAt }, dateTime(s.acceptedAt)),
          ' ',
          h('strong', {}, `${s.from} → ${s.to}`),
          ' · ',
          current
            ? h('span', { 'aria-current': 'true' }, tk('type', s.type))
            : h(
                'button',
                { type: 'button', class: 'link', onclick: () => this.open(s.id) },
                tk('type', s.type),
              ),
          ' · ',
          tk('status', s.status),
          s.decision ? ` · ${tk('decision', s.decision)}` : '',
        ),
      });
    }
    for (const item of m.history) {
      events.push({
        at: item.at,
        node: h(
          'li',
          { class: 'history' },
          h('time', { datetime: item.at }, dateTime(item.at)),
          ' ',
          tk('status', item.event ?? item.status),
          item.event === 'decided' && item.decision ? ` · ${tk('decision', item.decision)}` : '',
          ' — ',
          item.by.name
            ? `${item.by.name} (${item.by.agency})`
            : `${item.by.agency} · ${tk('role', item.by.role)}`,
        ),
      });
    }
    events.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    return h(
      'section',
      { class: 'thread', 'aria-labelledby': 'thread-title' },
      h('h3', { id: 'thread-title' }, t('thread.title')),
      h('ol', { class: 'timeline' }, ...events.map((e) => e.node)),
    );
  }
}

/** protocol §5.5: the earlier of respondBy and, for a freeze, executeBy. */
function envelopeDeadline(env: Obj): string | null {
  const candidates = [env['respondBy']];
  if (env['type'] === 'funds.freeze') candidates.push(obj(env['body'])['executeBy']);
  const times = candidates.filter(
    (v): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v)),
  );
  if (times.length === 0) return null;
  return times.reduce((a, b) => (Date.parse(a) <= Date.parse(b) ? a : b));
}

function claimText(m: MessageView): string {
  const c = m.claim!;
  const who = c.name ?? c.subject.slice(0, 19) + '…';
  return c.expiresAt ? t('message.claimUntil', { name: who, until: dateTime(c.expiresAt) }) : who;
}

function fact(label: string, value: Node | string): HTMLElement[] {
  return [h('dt', {}, label), h('dd', {}, value)];
}

/** A value from the message, untouched, in the language it was written in. */
function asSent(v: unknown): HTMLElement {
  return h(
    'span',
    { class: 'as-sent', translate: 'no' },
    typeof v === 'string' || typeof v === 'number'
      ? String(v)
      : v === undefined
        ? ''
        : JSON.stringify(v),
  );
}

/** Members this view does not lay out, shown as sent so nothing is hidden. */
function rest(b: Obj, shown: string[]): HTMLElement {
  const other = Object.keys(b).filter((k) => !shown.includes(k));
  if (other.length === 0) return h('div', {});
  return h(
    'details',
    { class: 'rest' },
    h('summary', {}, t('body.otherFields', { n: number(other.length) })),
    h(
      'dl',
      { class: 'facts' },
      ...other.flatMap((k) =>
        fact(k, h('pre', { class: 'as-sent', translate: 'no' }, JSON.stringify(b[k], null, 2))),
      ),
    ),
  );
}
