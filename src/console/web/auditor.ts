/**
 * The auditor's view (protocol §6): the latest checkpoint, its signature checked with
 * the pinned log key, and consistency with the last checkpoint this browser saw,
 * by an RFC 9162 §2.1.4.2 proof verified here. A fork or a rollback shows red and
 * the remembered checkpoint is kept, so the evidence is not overwritten.
 */
import type { Api } from './api.js';
import { fromBase64, toBase64, toHex } from './der.js';
import { checkList } from './checks.js';
import { clear, h } from './dom.js';
import { dateTime, number, t } from './i18n.js';
import type { Trust } from './trust.js';
import { openCheckpoint, verifyConsistency, type Check } from './verify.js';

const SEEN_KEY = 'casebridge.checkpoint';

interface Seen {
  size: number;
  root: string;
  at: string;
}

export class AuditorPage {
  readonly el = h('section', { class: 'auditor', 'aria-labelledby': 'auditor-title' });
  private checks: Array<{ name: string; check: Check }> = [];
  private latest: { size: number; root: Uint8Array; origin: string } | undefined;
  private previous: Seen | undefined;
  private checkedAt: Date | undefined;

  constructor(
    private readonly api: Api,
    private readonly trust: Trust,
  ) {}

  async refresh(): Promise<void> {
    this.checks = [];
    this.previous = readSeen();
    this.checkedAt = new Date();
    const key = this.trust.logKey;
    if (!key) {
      this.checks.push({ name: 'checkpoint', check: { ok: false, reason: 'verify.key.missing' } });
      return this.render();
    }
    let note: string;
    try {
      note = await this.api.checkpoint();
    } catch {
      this.checks.push({
        name: 'checkpoint',
        check: { ok: false, reason: 'verify.inclusion.unavailable' },
      });
      return this.render();
    }
    const opened = await openCheckpoint(note, key);
    this.checks.push({ name: 'checkpoint', check: opened.check });
    if (this.trust.pin === 'changed') {
      this.checks.push({
        name: 'logKey',
        check: {
          ok: false,
          reason: 'verify.key.changed',
          params: { key: this.trust.pinnedId ?? '' },
        },
      });
    }
    const cp = opened.checkpoint;
    if (cp) {
      this.latest = cp;
      const consistency = await this.consistency(cp.size, cp.root);
      this.checks.push({ name: 'consistency', check: consistency });
      if (consistency.ok && this.trust.pin !== 'changed') {
        localStorage.setItem(
          SEEN_KEY,
          JSON.stringify({ size: cp.size, root: toBase64(cp.root), at: new Date().toISOString() }),
        );
      }
    }
    this.render();
  }

  private async consistency(size: number, root: Uint8Array): Promise<Check> {
    const prev = this.previous;
    if (!prev) return { ok: true, reason: 'audit.firstSeen' };
    if (size < prev.size)
      return {
        ok: false,
        reason: 'audit.shrunk',
        params: { from: String(prev.size), to: String(size) },
      };
    let prevRoot: Uint8Array;
    try {
      prevRoot = fromBase64(prev.root);
    } catch {
      return { ok: true, reason: 'audit.firstSeen' };
    }
    let hashes: Uint8Array[] = [];
    if (size > prev.size) {
      try {
        hashes = (await this.api.consistency(prev.size, size)).hashes.map((x) => fromBase64(x));
      } catch {
        return { ok: false, reason: 'audit.noProof' };
      }
    }
    const ok = await verifyConsistency(prev.size, size, prevRoot, root, hashes);
    return ok
      ? {
          ok: true,
          reason: 'audit.consistent',
          params: { from: String(prev.size), to: String(size) },
        }
      : { ok: false, reason: 'audit.fork', params: { from: String(prev.size), to: String(size) } };
  }

  render(): void {
    const all = this.checks.length > 0 && this.checks.every((c) => c.check.ok);
    const cp = this.latest;
    clear(
      this.el,
      h('h2', { id: 'auditor-title' }, t('audit.title')),
      h(
        'div',
        { class: 'buttons' },
        h(
          'button',
          { type: 'button', id: 'audit-refresh', onclick: () => void this.refresh() },
          t('audit.refresh'),
        ),
      ),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, t('audit.size')),
        h('dd', { id: 'log-size' }, cp ? number(cp.size) : '—'),
        h('dt', {}, t('audit.root')),
        h('dd', { class: 'mono hash' }, cp ? toHex(cp.root) : '—'),
        h('dt', {}, t('audit.origin')),
        h('dd', { class: 'mono' }, cp?.origin ?? '—'),
        h('dt', {}, t('audit.keyId')),
        h('dd', { class: 'mono', id: 'log-key-id' }, this.trust.logKey?.keyIdHex ?? '—'),
        h('dt', {}, t('audit.previous')),
        h(
          'dd',
          {},
          this.previous
            ? t('audit.previousValue', {
                size: number(this.previous.size),
                at: dateTime(this.previous.at),
              })
            : '—',
        ),
        h('dt', {}, t('audit.checkedAt')),
        h('dd', {}, this.checkedAt ? dateTime(this.checkedAt) : '—'),
      ),
      h(
        'section',
        {
          class: `verification ${all ? 'ok' : 'bad'}`,
          id: 'audit-verification',
          'data-verdict': all ? 'ok' : 'bad',
          'aria-live': 'polite',
          'aria-labelledby': 'audit-checks-title',
        },
        h('h3', { id: 'audit-checks-title' }, t('verify.title')),
        checkList(this.checks),
      ),
    );
  }
}

function readSeen(): Seen | undefined {
  try {
    const v = JSON.parse(localStorage.getItem(SEEN_KEY) ?? 'null') as Seen | null;
    return v && Number.isSafeInteger(v.size) && typeof v.root === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
