/**
 * The `date-time` format as casebridge reads it: RFC 3339 §5.6 `date-time`, with
 * a mandatory offset (`Z` or `±hh:mm`, never the ISO 8601 `+hhmm`/`+hh` forms),
 * a real calendar date, and `T`/`Z` in either case (RFC 3339 §5.6 NOTE).
 *
 * A leap second (`:60`) is refused: `Date.parse` returns NaN for it, and the
 * freshness check (protocol §3, STALE) must get a number for every accepted value.
 */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt]([01]\d|2[0-3]):([0-5]\d):([0-5]\d)(?:\.\d{1,9})?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

export function isValidCalendarDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const max = month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] as number);
  return day <= max;
}

export function isRfc3339DateTime(value: string): boolean {
  const m = DATE_TIME.exec(value);
  if (m === null) return false;
  return isValidCalendarDate(Number(m[1]), Number(m[2]), Number(m[3]));
}
