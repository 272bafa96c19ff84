/**
 * The console's entry point: who we are, what we trust, the page frame (language
 * switch, time zone, navigation, live regions), and the event stream that keeps the
 * inbox current. Navigation is in-page state only: no message id, name or case
 * reference ever goes into the URL, the title or the history.
 */
import { Api, type Session } from './api.js';
import { AuditorPage } from './auditor.js';
import { clear, h } from './dom.js';
import {
  initialLocale,
  locale,
  LOCALES,
  onLocaleChange,
  setLocale,
  t,
  timeZoneLabel,
  tk,
  type Locale,
} from './i18n.js';
import { Inbox, isEmergencyFreeze, tickCountdowns } from './inbox.js';
import { MessagePage } from './message.js';
import { loadTrust, repin, type Trust } from './trust.js';

type View = { kind: 'inbox' } | { kind: 'message'; id: string } | { kind: 'audit' };

class ConsoleApp {
  private view: View = { kind: 'inbox' };
  private readonly main = h('main', { id: 'main', tabindex: '-1' });
  private readonly header = h('header', { class: 'top' });
  private readonly alerts = h('div', {
    id: 'alerts',
    class: 'alerts',
    role: 'alert',
    'aria-live': 'assertive',
    'aria-atomic': 'true',
  });
  private readonly status = h('div', {
    id: 'live-status',
    class: 'visually-hidden',
    role: 'status',
    'aria-live': 'polite',
  });
  private inbox: Inbox | undefined;
  private message: MessagePage | undefined;
  private auditor: AuditorPage | undefined;
  private streamOpen = false;
  private pendingAlert: { id: string } | undefined;

  constructor(
    private readonly api: Api,
    private readonly session: Session,
    private readonly trust: Trust,
  ) {}

  start(): void {
    document.body.replaceChildren(
      h('a', { class: 'skip', href: '#main' }, t('app.skip')),
      this.header,
      this.alerts,
      this.status,
      this.main,
    );
    this.body()
      .querySelector('.skip')
      ?.addEventListener('click', (e) => {
        e.preventDefault();
        this.main.focus();
      });
    const reviews = this.session.role === 'officer';
    if (reviews) {
      this.inbox = new Inbox(this.api, (id) => this.show({ kind: 'message', id }));
      this.message = new MessagePage(
        this.api,
        this.session,
        this.trust,
        () => this.show({ kind: 'inbox' }),
        (id) => this.show({ kind: 'message', id }),
      );
    }
    this.auditor = new AuditorPage(this.api, this.trust);
    if (!reviews) this.view = { kind: 'audit' };
    onLocaleChange(() => this.renderAll());
    this.renderAll();
    void this.load();
    if (reviews) this.listen();
    setInterval(() => tickCountdowns(document), 1000);
  }

  private body(): HTMLElement {
    return document.body;
  }

  private renderAll(): void {
    this.renderHeader();
    this.inbox?.render();
    this.message?.render();
    this.auditor?.render();
    this.renderAlert();
    this.mount();
  }

  private renderHeader(): void {
    const langSelect = h(
      'select',
      {
        id: 'language',
        onchange: (e: Event) => setLocale((e.target as HTMLSelectElement).value as Locale),
      },
      ...LOCALES.map((l) => h('option', { value: l, lang: l }, tk('lang', l))),
    );
    langSelect.value = locale();
    const nav = h(
      'nav',
      { 'aria-label': t('nav.label') },
      this.session.role === 'officer' ? this.navButton('inbox', t('nav.inbox')) : null,
      this.navButton('audit', t('nav.audit')),
    );
    clear(
      this.header,
      h(
        'div',
        { class: 'brand' },
        h('h1', {}, t('app.title')),
        h('span', { class: 'muted' }, t('app.agency', { agency: this.session.agency })),
      ),
      nav,
      h(
        'div',
        { class: 'who' },
        h(
          'span',
          { id: 'who' },
          t('app.signedInAs', { name: this.session.name, role: tk('role', this.session.role) }),
        ),
        h(
          'span',
          { id: 'time-zone', class: 'muted small' },
          t('app.timeZone', { zone: timeZoneLabel() }),
        ),
        h(
          'span',
          { class: `stream ${this.streamOpen ? 'on' : 'off'}`, id: 'stream-state' },
          this.streamOpen ? t('app.live') : t('app.offline'),
        ),
        h(
          'span',
          { class: 'lang' },
          h('label', { for: 'language' }, t('app.language')),
          langSelect,
        ),
      ),
      this.trust.pin === 'changed' ? this.keyWarning() : null,
    );
  }

  private keyWarning(): HTMLElement {
    return h(
      'div',
      { class: 'warning', id: 'key-warning', role: 'alert' },
      t('app.keyChanged', { pinned: this.trust.pinnedId ?? '—' }),
      ' ',
      h(
        'button',
        {
          type: 'button',
          onclick: () => {
            void this.api.logKey().then((k) => {
              repin(k.trim());
              location.reload();
            });
          },
        },
        t('app.keyAccept'),
      ),
    );
  }

  private navButton(kind: 'inbox' | 'audit', label: string): HTMLElement {
    const current = this.view.kind === kind || (kind === 'inbox' && this.view.kind === 'message');
    return h(
      'button',
      {
        type: 'button',
        class: 'nav',
        'aria-current': current ? 'page' : undefined,
        onclick: () => this.show({ kind }),
      },
      label,
    );
  }

  private show(v: View): void {
    this.view = v;
    if (v.kind === 'message' && this.pendingAlert?.id === v.id) {
      this.pendingAlert = undefined;
      this.renderAlert();
    }
    this.renderHeader();
    this.mount();
    if (v.kind === 'message') void this.message?.load(v.id);
    else if (v.kind === 'inbox') void this.inbox?.refresh().then(() => this.main.focus());
    else void this.auditor?.refresh();
  }

  private mount(): void {
    const el =
      this.view.kind === 'inbox'
        ? this.inbox?.el
        : this.view.kind === 'message'
          ? this.message?.el
          : this.auditor?.el;
    if (el && this.main.firstChild !== el) this.main.replaceChildren(el);
  }

  private async load(): Promise<void> {
    if (this.view.kind === 'inbox') await this.inbox?.refresh();
    else if (this.view.kind === 'audit') await this.auditor?.refresh();
  }

  /** protocol §5.5 event stream; while it is down the inbox is polled instead. */
  private listen(): void {
    this.api.events(
      (kind, data) => {
        if (kind === 'arrived' && isEmergencyFreeze(data)) {
          this.pendingAlert = { id: data.id };
          this.renderAlert();
        } else if (kind === 'arrived') {
          this.status.textContent = t('announce.arrived', { type: tk('type', data.type) });
        }
        if (this.view.kind === 'inbox') void this.inbox?.refresh();
        if (this.view.kind === 'message' && this.view.id === data.id)
          void this.message?.load(data.id, false);
      },
      (open) => {
        if (open === this.streamOpen) return;
        this.streamOpen = open;
        this.renderHeader();
        if (open && this.view.kind === 'inbox') void this.inbox?.refresh();
      },
    );
    setInterval(() => {
      if (!this.streamOpen && this.view.kind === 'inbox') void this.inbox?.refresh();
    }, 10_000);
  }

  private renderAlert(): void {
    const a = this.pendingAlert;
    if (!a) {
      this.alerts.replaceChildren();
      return;
    }
    clear(
      this.alerts,
      h(
        'div',
        { class: 'emergency-alert', id: 'emergency-alert' },
        h('strong', {}, t('announce.emergency')),
        ' ',
        h(
          'button',
          {
            type: 'button',
            class: 'primary',
            onclick: () => {
              this.pendingAlert = undefined;
              this.renderAlert();
              this.show({ kind: 'message', id: a.id });
            },
          },
          t('announce.open'),
        ),
        h(
          'button',
          {
            type: 'button',
            onclick: () => {
              this.pendingAlert = undefined;
              this.renderAlert();
            },
          },
          t('announce.dismiss'),
        ),
      ),
    );
  }
}

async function main(): Promise<void> {
  setLocale(initialLocale(), false);
  const api = new Api();
  try {
    const session = await api.start();
    const trust = await loadTrust(api);
    new ConsoleApp(api, session, trust).start();
  } catch (e) {
    document.body.replaceChildren(
      h(
        'main',
        { id: 'main' },
        h('h1', {}, t('app.title')),
        h(
          'p',
          { class: 'error', role: 'alert' },
          tk('error', (e as { code?: string }).code ?? 'INTERNAL'),
        ),
      ),
    );
  }
}

void main();
