import { join } from 'node:path';
import { expect } from 'chai';
import { ConfigError } from '../../src/errors.js';
import { loadRegistry, type Registry } from '../../src/registry/index.js';
import { getTestPki } from '../helpers/pki.js';

// dist/test/registry → repository root.
const SCHEMA_DIR = join(import.meta.dirname, '..', '..', '..', 'schemas');

const base = () => ({
  gateway: { id: 'GW-DEMO' },
  agencies: [
    { id: 'CN-GX-CZ', country: 'CN', name: 'Chongzuo Municipal Public Security Bureau' },
    { id: 'VN-LS', country: 'VN', name: 'Lang Son Provincial Police' },
    { id: 'VN-CB', country: 'VN', name: 'Cao Bang Provincial Police' },
  ],
  agreements: [
    {
      id: 'CN-VN-border-2021',
      parties: ['CN-GX-CZ', 'VN-LS'],
      types: ['evidence.request', 'status.update'],
      validFrom: '2021-01-01T00:00:00Z',
      validUntil: '2031-01-01T00:00:00Z',
    },
  ],
});

function refusal(doc: unknown): ConfigError {
  try {
    loadRegistry(typeof doc === 'string' ? doc : JSON.stringify(doc), SCHEMA_DIR);
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('registry', function () {
  let reg: Registry;
  before(function () {
    reg = loadRegistry(JSON.stringify(base()), SCHEMA_DIR);
  });

  it('loads the dev registry', async function () {
    const pki = await getTestPki();
    const dev = loadRegistry(pki.text('registry.json'), SCHEMA_DIR);
    expect(dev.gatewayId).to.equal('GW-DEMO');
    expect(dev.agencies.map((a) => a.id)).to.deep.equal([
      'CN-GX-CZ',
      'CN-GD',
      'MO-PJ',
      'VN-LS',
      'VN-CB',
    ]);
    expect(
      dev.permits('CN-GD', 'MO-PJ', 'funds.freeze', new Date('2025-01-01T00:00:00Z')),
    ).to.equal(true);
    expect(
      dev.permits('CN-GD', 'VN-LS', 'funds.freeze', new Date('2025-01-01T00:00:00Z')),
    ).to.equal(false);
  });

  it('knows its agencies', function () {
    expect(reg.gatewayId).to.equal('GW-DEMO');
    expect(reg.hasAgency('VN-LS')).to.equal(true);
    expect(reg.hasAgency('VN-XX')).to.equal(false);
    expect(reg.hasAgency('GW-DEMO')).to.equal(false);
    expect(reg.agency('VN-CB')?.country).to.equal('VN');
  });

  it('permits by pair (both directions), type and validity window [validFrom, validUntil)', function () {
    const at = new Date('2024-06-01T00:00:00Z');
    expect(reg.permits('CN-GX-CZ', 'VN-LS', 'evidence.request', at)).to.equal(true);
    expect(reg.permits('VN-LS', 'CN-GX-CZ', 'status.update', at)).to.equal(true);
    expect(reg.permits('CN-GX-CZ', 'VN-CB', 'evidence.request', at)).to.equal(false);
    expect(reg.permits('CN-GX-CZ', 'VN-LS', 'funds.freeze', at)).to.equal(false);
    expect(reg.permits('CN-GX-CZ', 'CN-GX-CZ', 'evidence.request', at)).to.equal(false);
    expect(
      reg.permits('CN-GX-CZ', 'VN-LS', 'evidence.request', new Date('2021-01-01T00:00:00Z')),
    ).to.equal(true);
    expect(
      reg.permits('CN-GX-CZ', 'VN-LS', 'evidence.request', new Date('2020-12-31T23:59:59.999Z')),
    ).to.equal(false);
    expect(
      reg.permits('CN-GX-CZ', 'VN-LS', 'evidence.request', new Date('2031-01-01T00:00:00Z')),
    ).to.equal(false);
    expect(
      reg.permits('CN-GX-CZ', 'VN-LS', 'evidence.request', new Date('2030-12-31T23:59:59Z')),
    ).to.equal(true);
  });

  it('refuses malformed registries with ConfigError naming CASEBRIDGE_REGISTRY', function () {
    const cases: unknown[] = [
      '{ not json',
      '[]',
      { ...base(), extra: 1 },
      { ...base(), gateway: { id: 'gateway' } },
      { ...base(), agencies: [{ id: 'cn-gx', country: 'CN', name: 'x' }] },
      { ...base(), agencies: [{ id: 'CN-GX-CZ', country: 'CHN', name: 'x' }] },
      { ...base(), agencies: [{ id: 'CN-GX-CZ', country: 'CN', name: 'x', notes: 'y' }] },
      { ...base(), agencies: [{ id: 'CN-GX-CZ', country: 'CN', name: 'x'.repeat(1000) }] },
      { ...base(), agencies: [...base().agencies, { id: 'VN-LS', country: 'VN', name: 'twice' }] },
      { ...base(), agreements: [{ ...base().agreements[0]!, parties: ['CN-GX-CZ', 'VN-HN'] }] },
      { ...base(), agreements: [{ ...base().agreements[0]!, parties: ['CN-GX-CZ', 'CN-GX-CZ'] }] },
      { ...base(), agreements: [{ ...base().agreements[0]!, types: ['evidence.teleport'] }] },
      { ...base(), agreements: [{ ...base().agreements[0]!, validFrom: 'yesterday' }] },
      { ...base(), agreements: [{ ...base().agreements[0]!, validUntil: '2020-01-01T00:00:00Z' }] },
      { ...base(), agreements: [base().agreements[0]!, base().agreements[0]!] },
      { ...base(), gateway: { id: 'VN-LS' } },
    ];
    for (const c of cases) {
      const e = refusal(c);
      expect(e.variable, JSON.stringify(c).slice(0, 80)).to.equal('CASEBRIDGE_REGISTRY');
    }
  });
});
