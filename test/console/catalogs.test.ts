/**
 * protocol §10: every string of the console exists in zh-CN, vi and en. A key the
 * sources use but a catalog lacks fails, and so does a key no source uses.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';

const WEB = join(process.cwd(), 'src', 'console', 'web');
const LOCALES = ['en', 'zh-CN', 'vi'];

const catalog = (l: string) =>
  JSON.parse(readFileSync(join(WEB, 'messages', `${l}.json`), 'utf8')) as Record<string, string>;
const sources = readdirSync(WEB)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(join(WEB, f), 'utf8'))
  .join('\n');
/** Every single-quoted string literal in the browser sources. */
const literals = new Set([...sources.matchAll(/'((?:[^'\\\n]|\\.)*)'/g)].map((m) => m[1]!));
/** `t('id'…)`: ids passed literally. */
const direct = new Set([...sources.matchAll(/\bt\(\s*'([^']+)'/g)].map((m) => m[1]!));
/** `tk('family', value)`: a family whose values come from the protocol's vocabularies. */
const families = new Set([...sources.matchAll(/\btk\(\s*'([^']+)'/g)].map((m) => m[1]!));
const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

function used(key: string): boolean {
  if (literals.has(key)) return true;
  for (const f of families) {
    if (key.startsWith(f + '.') && literals.has(key.slice(f.length + 1))) return true;
  }
  return false;
}

describe('console message catalogs (protocol §10)', function () {
  const en = catalog('en');

  for (const l of LOCALES) {
    it(`${l}: has exactly the keys of en, none empty, with the same placeholders`, function () {
      const c = catalog(l);
      expect(Object.keys(c).sort()).to.deep.equal(Object.keys(en).sort());
      for (const [k, v] of Object.entries(c)) {
        expect(v.trim(), `${l} ${k}`).to.not.equal('');
        expect(placeholders(v), `${l} ${k}`).to.deep.equal(placeholders(en[k]!));
      }
    });
  }

  it('holds every id the sources pass to t()', function () {
    const missing = [...direct].filter((k) => !(k in en));
    expect(missing).to.deep.equal([]);
  });

  it('holds no key that no source uses', function () {
    const unused = Object.keys(en).filter((k) => !used(k));
    expect(unused).to.deep.equal([]);
  });

  it('has a word for every value of each vocabulary the page shows', function () {
    const vocab = readFileSync(join(WEB, 'vocabulary.ts'), 'utf8');
    const lists: Record<string, string> = {
      MESSAGE_TYPES: 'type',
      PRIORITIES: 'priority',
      LIFECYCLE: 'status',
      DECISIONS: 'decision',
      ROLES: 'role',
      HANDLING: 'handling',
      OFFENCES: 'offence',
      ITEM_KINDS: 'kind',
      IDENTIFIER_TYPES: 'idtype',
      CUSTODY_ACTIONS: 'custody',
      DOCUMENT_TYPES: 'doctype',
      CONSOLE_ERRORS: 'error',
    };
    for (const [list, family] of Object.entries(lists)) {
      const body = new RegExp(`${list} = \\[([^\\]]*)\\]`).exec(vocab)?.[1];
      expect(body, list).to.be.a('string');
      for (const [, v] of body!.matchAll(/'([^']+)'/g)) {
        expect(en, `${family}.${v}`).to.have.property(`${family}.${v}`);
      }
    }
  });
});
