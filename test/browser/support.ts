/**
 * Real-browser support for the console tests: Debian's Chromium driven by
 * playwright-core, one context per person with that person's client certificate.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Identity } from '../helpers/gateway.js';

/**
 * The few browser globals the tests read inside `page.evaluate` (the test build has
 * no DOM library). Use as `(globalThis as unknown as PageGlobals).document…`.
 */
export interface PageGlobals {
  document: {
    documentElement: { lang: string };
    querySelector(s: string): { textContent: string | null } | null;
    querySelectorAll(s: string): { length: number };
  };
  history: { length: number };
  localStorage: { getItem(k: string): string | null; setItem(k: string, v: string): void };
  axe: { run(o: object): Promise<unknown> };
}

export const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'console');

/** Each launch gets a fresh temporary user-data dir from Playwright, removed on close. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface PersonOptions {
  locale: string;
  timezoneId?: string;
  /** Only for the accessibility scan, which injects axe-core as an inline script. */
  bypassCSP?: boolean;
}

/**
 * A browser context presenting `who`'s certificate to the gateway at `url`.
 * Playwright's `clientCertificates` cannot be given a CA for the server, so this
 * context alone ignores HTTPS errors; the server is the test gateway we just
 * started on 127.0.0.1 with the test PKI, and mutual TLS is still enforced by it.
 */
export function personContext(
  browser: Browser,
  url: string,
  who: Identity,
  opts: PersonOptions,
): Promise<BrowserContext> {
  return browser.newContext({
    clientCertificates: [
      { origin: new URL(url).origin, cert: Buffer.from(who.cert), key: Buffer.from(who.key) },
    ],
    ignoreHTTPSErrors: true,
    locale: opts.locale,
    timezoneId: opts.timezoneId ?? 'Asia/Ho_Chi_Minh',
    viewport: { width: 1280, height: 900 },
    ...(opts.bypassCSP ? { bypassCSP: true } : {}),
  });
}

/** Collects CSP violations and page errors, which every test expects to stay empty. */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Trusted Type/i.test(m.text()))
      problems.push(`csp: ${m.text()}`);
  });
  return problems;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
