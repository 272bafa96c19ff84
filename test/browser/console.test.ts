/**
 * The console in a real browser (protocol §10): Debian's Chromium, the officer's
 * own client certificate, the gateway started on a free port. Assertions use ids
 * and data attributes, never the wording, so the same loop runs in every language.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { compactVerify } from 'jose';
import type { Browser, Page } from 'playwright-core';
import type { Envelope } from '../../src/envelope/types.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import {
  call,
  eventually,
  identity,
  signAs,
  startTestGateway,
  submit,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { openVault, type SealedMessage } from '../../src/retention/index.js';
import { getTestPki, testPkiPath } from '../helpers/pki.js';
import { pgExec } from '../helpers/database.js';
import {
  launchBrowser,
  personContext,
  screenshot,
  watchPage,
  type PageGlobals,
} from './support.js';

const A = 'CN-GX-CZ';
const B = 'VN-LS';
const HOUR = 3_600_000;
const CATALOG_DIR = join(process.cwd(), 'src', 'console', 'web', 'messages');
const catalog = (locale: string) =>
  JSON.parse(readFileSync(join(CATALOG_DIR, `${locale}.json`), 'utf8')) as Record<string, string>;

interface Summary {
  id: string;
  type: string;
  inReplyTo: string | null;
}

describe('console in a real browser (protocol §10)', function () {
  this.timeout(60_000);
  let t: TestGateway;
  let browser: Browser;
  let aSys: Identity;
  let bOfficer: Identity;

  before(async function () {
    [t, browser, aSys, bOfficer] = await Promise.all([
      startTestGateway(),
      launchBrowser(),
      identity(A, 'system'),
      identity(B, 'officer'),
    ]);
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  async function accepted(env: Envelope): Promise<string> {
    const res = await submit(t.gw, aSys, signAs(env, aSys));
    expect(res.status, res.text).to.equal(202);
    return env.id;
  }

  async function delivered(id: string): Promise<void> {
    await eventually(
      async () =>
        ['delivered', 'claimed'].includes((await t.gw.store.getMessage(id))?.status ?? ''),
      10_000,
      'delivery',
    );
  }

  async function openConsole(locale: string, opts: { bypassCSP?: boolean } = {}) {
    const ctx = await personContext(browser, t.gw.url, bOfficer, { locale, ...opts });
    const page = await ctx.newPage();
    const problems = watchPage(page);
    await page.goto(`${t.gw.url}/console`);
    await page.locator('#who').waitFor();
    return { ctx, page, problems };
  }

  async function openMessage(page: Page, id: string): Promise<void> {
    await page.locator(`tr[data-id="${id}"] button.open-message`).click();
    try {
      await page
        .locator('#verification:not([data-verdict="pending"])')
        .waitFor({ timeout: 15_000 });
    } catch (e) {
      // Say what the page shows instead (an error notice, a message still loading).
      const shown = (
        await page
          .locator('main')
          .innerText()
          .catch(() => '')
      ).slice(0, 600);
      throw new Error(`no verdict for ${id} within 15 s; the page shows:\n${shown}`, { cause: e });
    }
  }

  for (const [n, locale] of ['en', 'zh-CN', 'vi'].entries()) {
    it(`full loop in ${locale}: a freeze arrives live, verifies green, is claimed and rejected, and the sender reads the decision`, async function () {
      const words = catalog(locale);
      const { ctx, page, problems } = await openConsole(locale);
      try {
        expect(
          await page.evaluate(
            () => (globalThis as unknown as PageGlobals).document.documentElement.lang,
          ),
        ).to.equal(locale);
        expect(await page.title()).to.equal(words['app.title']);
        const historyBefore = await page.evaluate(
          () => (globalThis as unknown as PageGlobals).history.length,
        );

        // The console is already open when the sender submits.
        const freeze = sampleEnvelope('funds.freeze', {
          priority: 'emergency',
          respondBy: new Date(Date.now() + 6 * HOUR).toISOString(),
        });
        // Each run's freeze is due sooner than any earlier one, so it sorts first even if one is left open.
        (freeze.body as { executeBy: string }).executeBy = new Date(
          Date.now() + 4 * HOUR - n * 10 * 60_000,
        ).toISOString();
        const id = await accepted(freeze);

        const first = page.locator('table.queue tbody tr').first();
        await page.locator(`tr[data-id="${id}"]`).waitFor({ timeout: 15_000 });
        expect(await first.getAttribute('data-id')).to.equal(id);
        expect(await first.getAttribute('class')).to.contain('emergency-freeze');
        const countdown = first.locator('.countdown');
        const before = await countdown.textContent();
        expect(before).to.match(/\d/);
        // The deadline shown is executeBy (4 h), not the later respondBy (6 h).
        expect(await countdown.getAttribute('data-deadline')).to.equal(
          (freeze.body as { executeBy: string }).executeBy,
        );
        await page.locator('#emergency-alert').waitFor({ timeout: 10_000 });
        expect(await page.locator('#alerts').getAttribute('aria-live')).to.equal('assertive');
        await page.waitForFunction(
          (prev) =>
            (globalThis as unknown as PageGlobals).document.querySelector(
              'table.queue tbody tr .countdown',
            )?.textContent !== prev,
          before,
          { timeout: 5_000 },
        );
        await screenshot(page, `inbox-${locale}`);

        await openMessage(page, id);
        expect(await page.locator('#verification').getAttribute('data-verdict')).to.equal('ok');
        const checks = page.locator('#verification li[data-check]');
        expect(await checks.count()).to.equal(5);
        for (const ok of await checks.evaluateAll((els) =>
          els.map((e) => e.getAttribute('data-ok')),
        ))
          expect(ok).to.equal('true');
        await page.locator('#execute-by').waitFor();

        // Nothing about the message reaches the URL, the title or the history.
        expect(new URL(page.url()).pathname).to.equal('/console');
        expect(new URL(page.url()).search).to.equal('');
        expect(await page.title()).to.equal(words['app.title']);
        expect(
          await page.evaluate(() => (globalThis as unknown as PageGlobals).history.length),
        ).to.equal(historyBefore);

        await page.locator('#claim').click();
        await page.locator('#decide').waitFor();
        await page.selectOption('#decision-status', 'rejected');
        await page.locator('#decide').click();
        await page.locator('.field-error').waitFor();
        const reason = `TESTONLY no legal basis for account freeze (${locale})`;
        await page.fill('#decision-reason', reason);
        await page.locator('#decide').click();
        await page.locator('.notice').waitFor();
        await eventually(
          async () => (await t.gw.store.getMessage(id))?.decision === 'rejected',
          5_000,
          'decided',
        );
        await screenshot(page, `message-${locale}`);
        expect(problems).to.deep.equal([]);

        // The sender reads the status.update and checks it against the pinned gateway certificate.
        let update: Summary | undefined;
        await eventually(
          async () => {
            const res = await call(t.gw, aSys, 'GET', '/v1/messages?direction=received&limit=200');
            update = res
              .json<{ items: Summary[] }>()
              .items.find((m) => m.type === 'status.update' && m.inReplyTo === id);
            return update !== undefined;
          },
          10_000,
          'status.update delivered',
        );
        const got = await call(t.gw, aSys, 'GET', `/v1/messages/${update!.id}`);
        const pki = await getTestPki();
        const gatewayKey = new X509Certificate(pki.text('gateway/gateway.crt.pem')).publicKey;
        const { payload } = await compactVerify(got.json<{ jws: string }>().jws, gatewayKey);
        const env = JSON.parse(Buffer.from(payload).toString('utf8')) as Envelope;
        expect(env.inReplyTo).to.equal(id);
        expect(env.body).to.include({ status: 'rejected', reason });
        expect((env.body as { decidedBy: { name: string } }).decidedBy.name).to.equal(
          new X509Certificate(bOfficer.cert).subject.match(/CN=([^\n]+)/)![1],
        );
      } finally {
        await ctx.close();
      }
    });
  }

  it('shows red for a message whose stored bytes were altered', async function () {
    const id = await accepted(sampleEnvelope('funds.freeze', { priority: 'urgent' }));
    await delivered(id);
    // Alter the stored JWS: one account number in the signed payload changes. The bytes
    // are sealed at rest, so the edit is made as an attacker holding the keys would:
    // open, change, seal again.
    const vault = openVault(testPkiPath('data/data.key.pem'), join(t.dataDir, 'keys'));
    const row = await bodyOf(t, id);
    const stored = vault.open(id, {
      sealed: row.sealed,
      wrappedKey: row.wrapped_key,
      epoch: row.epoch,
    });
    const [h, p, s] = stored.split('.');
    const text = Buffer.from(p!, 'base64url').toString('utf8');
    const altered = text.replace('TESTACCT-0000000001', 'TESTACCT-0000000009');
    expect(altered).to.not.equal(text);
    const jws = `${h}.${Buffer.from(altered).toString('base64url')}.${s}`;
    await resealBody(t, row.seq, vault.seal(id, jws, new Date(row.accepted_at)));
    const { ctx, page } = await openConsole('en');
    try {
      await openMessage(page, id);
      expect(await page.locator('#verification').getAttribute('data-verdict')).to.equal('bad');
      const ok = (name: string) =>
        page.locator(`#verification li[data-check="${name}"]`).getAttribute('data-ok');
      expect(await ok('signature')).to.equal('false');
      expect(await ok('receipt')).to.equal('false');
      expect(await ok('inclusion')).to.equal('false');
      await screenshot(page, 'tampered');
    } finally {
      await ctx.close();
    }
  });

  it('renders a 1,000-person handover and finds one person by search', async function () {
    const env = sampleEnvelope('suspect.handover');
    const persons = Array.from({ length: 1000 }, (_, i) => ({
      surname: `TESTSURNAME${String(i).padStart(4, '0')}`,
      givenNames: 'SYNTHETIC TESTCASE',
      dateOfBirth: '1990-01-01',
      nationality: 'VN',
      documents: [{ type: 'passport', number: `TESTPP${String(i).padStart(7, '0')}` }],
    }));
    (env.body as { persons: unknown[] }).persons = persons;
    const id = await accepted(env);
    await delivered(id);
    const { ctx, page, problems } = await openConsole('zh-CN');
    try {
      await page.locator(`tr[data-id="${id}"]`).waitFor();
      const started = Date.now();
      await page.locator(`tr[data-id="${id}"] button.open-message`).click();
      await page.waitForFunction(
        () =>
          (globalThis as unknown as PageGlobals).document.querySelectorAll('#persons tbody tr')
            .length === 1000,
      );
      const rendered = Date.now() - started;
      const searchStarted = Date.now();
      await page.fill('#persons-search', 'testsurname0777');
      await page.waitForFunction(
        () =>
          (globalThis as unknown as PageGlobals).document.querySelectorAll(
            '#persons tbody tr:not([hidden])',
          ).length === 1,
      );
      const searched = Date.now() - searchStarted;
      const hit = page.locator('#persons tbody tr:not([hidden]) td').first();
      expect(await hit.textContent()).to.equal('TESTSURNAME0777');
      console.log(
        `      1,000-person handover: rendered in ${rendered} ms, search in ${searched} ms (goal < 2000 ms each)`,
      );
      await screenshot(page, 'handover-zh-CN');
      expect(problems).to.deep.equal([]);
    } finally {
      await ctx.close();
    }
  });

  it('auditor: checks each new checkpoint against the last one seen, and shows a fork red', async function () {
    const auditor = await identity(B, 'auditor');
    const ctx = await personContext(browser, t.gw.url, auditor, { locale: 'en' });
    const page = await ctx.newPage();
    try {
      await page.goto(`${t.gw.url}/console`);
      const consistency = page.locator('#audit-verification li[data-check="consistency"]');
      await consistency.waitFor();
      expect(await consistency.getAttribute('data-ok')).to.equal('true');
      expect(await page.locator('#audit-verification').getAttribute('data-verdict')).to.equal('ok');
      const seen = await page.evaluate(() =>
        (globalThis as unknown as PageGlobals).localStorage.getItem('casebridge.checkpoint'),
      );
      const before = (JSON.parse(seen!) as { size: number }).size;

      // The log grows; the next check proves the new checkpoint extends the one remembered.
      await accepted(sampleEnvelope('evidence.request'));
      await eventually(
        async () => ((await t.gw.store.latestCheckpoint())?.size ?? 0) > before,
        5_000,
        'checkpoint',
      );
      await page.locator('#audit-refresh').click();
      await page.waitForFunction(
        (size) =>
          JSON.parse(
            (globalThis as unknown as PageGlobals).localStorage.getItem('casebridge.checkpoint') ??
              '{}',
          ).size > size,
        before,
      );
      expect(await consistency.getAttribute('data-ok')).to.equal('true');

      // A browser that remembers another root at that size has seen a fork.
      await page.evaluate(() => {
        const store = (globalThis as unknown as PageGlobals).localStorage;
        const s = JSON.parse(store.getItem('casebridge.checkpoint')!) as {
          size: number;
          root: string;
        };
        const forged = { ...s, size: s.size - 1, root: btoa('x'.repeat(32)) };
        store.setItem('casebridge.checkpoint', JSON.stringify(forged));
      });
      await page.locator('#audit-refresh').click();
      await page.locator('#audit-verification[data-verdict="bad"]').waitFor();
      expect(await consistency.getAttribute('data-ok')).to.equal('false');
      await screenshot(page, 'audit-fork');
    } finally {
      await ctx.close();
    }
  });

  it('has no serious or critical accessibility violations (axe-core)', async function () {
    const id = await accepted(sampleEnvelope('evidence.request'));
    await delivered(id);
    // axe-core goes in as an inline script, which the console's CSP refuses: this context alone bypasses it.
    const { ctx, page } = await openConsole('vi', { bypassCSP: true });
    try {
      const scan = async (what: string) => {
        await page.addScriptTag({ path: join(process.cwd(), 'node_modules/axe-core/axe.min.js') });
        const result = (await page.evaluate(() =>
          (globalThis as unknown as PageGlobals).axe.run({
            runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
          }),
        )) as { violations: Array<{ id: string; impact: string; nodes: unknown[] }> };
        const bad = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
        expect(
          bad.map((v) => `${what}: ${v.id} (${v.impact}, ${v.nodes.length} nodes)`),
        ).to.deep.equal([]);
      };
      await page.locator(`tr[data-id="${id}"]`).waitFor();
      await scan('inbox');
      await openMessage(page, id);
      await scan('message');
      await page.locator('nav button').last().click();
      await page.locator('#audit-verification').waitFor();
      await scan('audit');
    } finally {
      await ctx.close();
    }
  });
});

interface BodyRow {
  seq: number;
  sealed: Buffer;
  wrapped_key: Buffer;
  epoch: string;
  accepted_at: string;
}

const BODY_SQL = `SELECT b.seq, b.sealed, b.wrapped_key, b.epoch, m.accepted_at
  FROM message_bodies b JOIN messages m ON m.seq = b.seq WHERE m.id = `;

/** The sealed body of a message, read behind the gateway's back (SQLite or PostgreSQL). */
async function bodyOf(t: TestGateway, id: string): Promise<BodyRow> {
  const url = t.gw.config.databaseUrl;
  if (url !== undefined) return (await pgExec(url, `${BODY_SQL}$1`, [id]))[0] as BodyRow;
  const db = new Database(join(t.dataDir, 'casebridge.sqlite'), { readonly: true });
  try {
    return db.prepare(`${BODY_SQL}?`).get(id) as BodyRow;
  } finally {
    db.close();
  }
}

/** Writes other sealed bytes into a message's body, as an attacker holding the keys would. */
async function resealBody(t: TestGateway, seq: number, s: SealedMessage): Promise<void> {
  const url = t.gw.config.databaseUrl;
  const sql = 'UPDATE message_bodies SET sealed = $1, wrapped_key = $2, epoch = $3 WHERE seq = $4';
  if (url !== undefined) {
    await pgExec(url, sql, [s.sealed, s.wrappedKey, s.epoch, seq]);
    return;
  }
  const db = new Database(join(t.dataDir, 'casebridge.sqlite'));
  try {
    db.prepare(sql.replace(/\$\d/g, '?')).run(s.sealed, s.wrappedKey, s.epoch, seq);
  } finally {
    db.close();
  }
}
