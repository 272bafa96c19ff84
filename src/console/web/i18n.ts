/**
 * Message catalogs keyed by id, one per locale (protocol §10), and Intl formatting in
 * the viewer's own time zone. Message content is never translated: only the page's
 * own words go through `t`.
 */
import en from './messages/en.json';
import vi from './messages/vi.json';
import zhCN from './messages/zh-CN.json';

export const LOCALES = ['zh-CN', 'vi', 'en'] as const;
export type Locale = (typeof LOCALES)[number];
export type MessageId = keyof typeof en;

const CATALOGS: Record<Locale, Record<string, string>> = { en, vi, 'zh-CN': zhCN };
const STORAGE_KEY = 'casebridge.locale';

let current: Locale = 'en';
const listeners: Array<() => void> = [];

/** The browser's preferred languages pick the default; a saved choice wins. */
export function initialLocale(): Locale {
  const saved = localStorage.getItem(STORAGE_KEY);
  if ((LOCALES as readonly string[]).includes(saved ?? '')) return saved as Locale;
  for (const lang of navigator.languages ?? [navigator.language]) {
    const l = lang.toLowerCase();
    if (l.startsWith('zh')) return 'zh-CN';
    if (l.startsWith('vi')) return 'vi';
    if (l.startsWith('en')) return 'en';
  }
  return 'en';
}

export function locale(): Locale {
  return current;
}

export function setLocale(l: Locale, remember = true): void {
  current = l;
  if (remember) localStorage.setItem(STORAGE_KEY, l);
  document.documentElement.lang = l;
  document.title = t('app.title');
  for (const f of listeners) f();
}

export function onLocaleChange(f: () => void): void {
  listeners.push(f);
}

/** The string `id` in the current locale, with `{name}` placeholders filled. */
export function t(id: MessageId, params: Record<string, string | number> = {}): string {
  const s = CATALOGS[current][id] ?? en[id] ?? id;
  return s.replace(/\{(\w+)\}/g, (m, k: string) => (k in params ? String(params[k]) : m));
}

/** A catalog id built at run time (e.g. `type.funds.freeze`); unknown ids show as is. */
export function tk(prefix: string, key: string): string {
  const id = `${prefix}.${key}`;
  return id in en ? t(id as MessageId) : key;
}

export function timeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** The zone named the way the viewer's locale names it, with its IANA id. */
export function timeZoneLabel(): string {
  const parts = new Intl.DateTimeFormat(current, { timeZoneName: 'longGeneric' }).formatToParts(
    new Date(),
  );
  const name = parts.find((p) => p.type === 'timeZoneName')?.value ?? '';
  return `${name} (${timeZone()})`;
}

export function dateTime(iso: string | Date): string {
  const d = typeof iso === 'string' ? new Date(iso) : iso;
  if (Number.isNaN(d.getTime())) return String(iso);
  // dateStyle/timeStyle cannot be combined with timeZoneName, so the fields are named.
  return new Intl.DateTimeFormat(current, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZoneName: 'short',
  }).format(d);
}

export function dateOnly(s: string): string {
  const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(s);
  if (!m) return s;
  // A calendar date, not an instant: format it in UTC so no zone shifts the day.
  return new Intl.DateTimeFormat(current, { dateStyle: 'medium', timeZone: 'UTC' }).format(
    new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!)),
  );
}

export function number(n: number): string {
  return new Intl.NumberFormat(current).format(n);
}

interface DurationFormatLike {
  format(d: { days?: number; hours?: number; minutes?: number; seconds?: number }): string;
}
type DurationFormatCtor = new (locale: string, opts: { style: string }) => DurationFormatLike;

/** A duration such as "2 h 5 min 3 s", via Intl.DurationFormat where the browser has it. */
export function duration(ms: number): string {
  const total = Math.floor(Math.abs(ms) / 1000);
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const parts = days > 0 ? { days, hours, minutes } : { hours, minutes, seconds };
  const DF = (Intl as unknown as { DurationFormat?: DurationFormatCtor }).DurationFormat;
  if (DF) return new DF(current, { style: 'narrow' }).format(parts);
  const unit = (v: number, u: string) =>
    new Intl.NumberFormat(current, { style: 'unit', unit: u, unitDisplay: 'narrow' }).format(v);
  return days > 0
    ? `${unit(days, 'day')} ${unit(hours, 'hour')} ${unit(minutes, 'minute')}`
    : `${unit(hours, 'hour')} ${unit(minutes, 'minute')} ${unit(seconds, 'second')}`;
}

/** "3 h 2 min left" or "overdue by 5 min", for a deadline. */
export function countdown(deadline: string, now = Date.now()): string {
  const ms = new Date(deadline).getTime() - now;
  return ms >= 0
    ? t('countdown.left', { time: duration(ms) })
    : t('countdown.overdue', { time: duration(ms) });
}

export function bytes(n: number): string {
  const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte', 'terabyte'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return new Intl.NumberFormat(current, {
    style: 'unit',
    unit: units[i]!,
    unitDisplay: 'short',
    maximumFractionDigits: i === 0 ? 0 : 1,
  }).format(v);
}
