/**
 * deploy/prometheus/alerts.yml is well formed, every rule names metrics the gateway
 * exports, and every runbook link lands on a section of docs/operations.md.
 * (A small reader for the YAML subset the file uses: maps, lists of maps, scalars.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Metrics } from '../../src/ops/metrics.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Metrics another part of the gateway (the review deadlines) exports. */
const FROM_ELSEWHERE = new Set(['casebridge_messages_overdue']);

type Yaml = string | Yaml[] | { [key: string]: Yaml };

function parseYamlSubset(text: string): Yaml {
  const lines = text
    .split('\n')
    .map((raw) => ({ indent: raw.length - raw.trimStart().length, text: raw.trim() }))
    .filter((l) => l.text !== '' && !l.text.startsWith('#'));
  let i = 0;
  const scalar = (s: string): string => (s.startsWith('"') ? (JSON.parse(s) as string) : s);
  const block = (indent: number): Yaml =>
    lines[i]!.text.startsWith('- ') ? list(indent) : map(indent);
  const list = (indent: number): Yaml[] => {
    const out: Yaml[] = [];
    while (i < lines.length && lines[i]!.indent === indent && lines[i]!.text.startsWith('- ')) {
      lines[i] = { indent: indent + 2, text: lines[i]!.text.slice(2) };
      out.push(block(indent + 2));
    }
    return out;
  };
  const map = (indent: number): { [key: string]: Yaml } => {
    const out: { [key: string]: Yaml } = {};
    while (i < lines.length && lines[i]!.indent === indent && !lines[i]!.text.startsWith('- ')) {
      const line = lines[i++]!;
      const m = /^([A-Za-z_][\w-]*):(?:\s+(.+))?$/.exec(line.text);
      assert.ok(m, `not a key: ${line.text}`);
      assert.ok(!(m[1]! in out), `duplicate key ${m[1]}`);
      if (m[2] !== undefined) out[m[1]!] = scalar(m[2]);
      else {
        assert.ok(i < lines.length && lines[i]!.indent > indent, `${m[1]} has no value`);
        out[m[1]!] = block(lines[i]!.indent);
      }
    }
    return out;
  };
  const doc = block(0);
  assert.equal(i, lines.length, `unparsed from line: ${lines[i]?.text}`);
  return doc;
}

function slugs(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      m[1]!
        .toLowerCase()
        .replace(/[^a-z0-9 -]/g, '')
        .replace(/ /g, '-'),
    ),
  );
}

describe('ops: Prometheus alert rules', () => {
  it('parse, use exported metrics only, and link to docs/operations.md sections', () => {
    const doc = parseYamlSubset(readFileSync(`${ROOT}deploy/prometheus/alerts.yml`, 'utf8')) as {
      groups: { name: string; rules: Record<string, Yaml>[] }[];
    };
    const anchors = slugs(readFileSync(`${ROOT}docs/operations.md`, 'utf8'));
    const registry = new Metrics(false).registry;
    const rules = doc.groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 8);
    const names = new Set<string>();
    for (const r of rules) {
      const alert = r['alert'] as string;
      assert.match(alert, /^Casebridge[A-Za-z]+$/);
      assert.ok(!names.has(alert), `duplicate alert ${alert}`);
      names.add(alert);
      assert.match(r['for'] as string, /^\d+[smh]$/, `${alert}: for`);
      const labels = r['labels'] as Record<string, string>;
      assert.ok(['page', 'ticket'].includes(labels['severity']!), `${alert}: severity`);
      const ann = r['annotations'] as Record<string, string>;
      assert.ok(ann['summary'], `${alert}: summary`);
      const [file, anchor] = ann['runbook']!.split('#');
      assert.equal(file, 'docs/operations.md');
      assert.ok(anchors.has(anchor!), `${alert}: no section #${anchor} in docs/operations.md`);
      const expr = r['expr'] as string;
      const used = [...expr.matchAll(/\bcasebridge_[a-z_]+/g)].map((m) => m[0]);
      assert.ok(used.length > 0, `${alert}: expr names no casebridge metric`);
      for (const metric of used) {
        assert.ok(
          registry.getSingleMetric(metric) !== undefined || FROM_ELSEWHERE.has(metric),
          `${alert}: ${metric} is not exported`,
        );
      }
    }
    for (const required of [
      'casebridge_outbox_oldest_age_seconds',
      'casebridge_broker_blocked',
      'casebridge_data_dir_free_bytes',
      'casebridge_audit_checkpoint_stale_seconds',
      'casebridge_clock_steps_total',
      'casebridge_messages_overdue',
    ]) {
      assert.ok(
        rules.some((r) => (r['expr'] as string).includes(required)),
        `no alert on ${required}`,
      );
    }
  });
});
