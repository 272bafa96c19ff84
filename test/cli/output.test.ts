/**
 * What `inbox`, `get` and `thread` print (protocol §7): snapshots of the terminal
 * tables and views (test/fixtures/cli/*.txt; UPDATE_SNAPSHOTS=1 rewrites them), and
 * the commands run against a live gateway, as a terminal (CASEBRIDGE_TTY=1) and
 * through a pipe (JSON).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { asJson, messageTable, messageView } from '../../src/cli/format.js';
import type { MessageDetail, MessagePage } from '../../src/sdk/index.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import {
  eventually,
  identity,
  signAs,
  startTestGateway,
  submit,
  writeTemp,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = `${ROOT}test/fixtures/cli/`;
const MAIN = `${ROOT}dist/src/cli/main.js`;

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(FIXTURES + name, 'utf8')) as T;
}

function snapshot(name: string, actual: string): void {
  const path = FIXTURES + name;
  if (process.env['UPDATE_SNAPSHOTS'] === '1' || !existsSync(path)) {
    if (process.env['CI']) throw new Error(`snapshot ${name} is missing`);
    writeFileSync(path, actual + '\n');
  }
  expect(actual + '\n').to.equal(readFileSync(path, 'utf8'));
}

describe('cli output for people (protocol §7)', function () {
  describe('snapshots', function () {
    it('inbox as a terminal table, with deadline, claim holder and degraded fields', function () {
      snapshot('inbox.tty.txt', messageTable(fixture<MessagePage>('inbox.json').items));
    });
    it('inbox and get through a pipe: the API JSON, indented', function () {
      snapshot('inbox.pipe.json', asJson(fixture<MessagePage>('inbox.json')));
      snapshot('get.pipe.json', asJson(fixture<MessageDetail>('message.json')));
    });
    it('thread as a terminal table', function () {
      snapshot(
        'thread.tty.txt',
        messageTable(fixture<MessagePage>('inbox.json').items, { thread: true }),
      );
    });
    it('get as a terminal view, and one whose content was shredded', function () {
      snapshot('get.tty.txt', messageView(fixture<MessageDetail>('message.json')));
      snapshot(
        'get-degraded.tty.txt',
        messageView(fixture<MessageDetail>('message-degraded.json')),
      );
    });
  });

  describe('against a live gateway', function () {
    let t: TestGateway;
    let aSys: Identity;
    let bOfficer: Identity;
    let files: { cert: string; key: string; ca: string };
    const ids: Record<string, string> = {};

    before(async function () {
      t = await startTestGateway();
      const pki = await getTestPki();
      aSys = await identity('CN-GX-CZ', 'system');
      bOfficer = await identity('VN-LS', 'officer');
      files = {
        cert: writeTemp('officer.crt.pem', bOfficer.cert),
        key: writeTemp('officer.key.pem', bOfficer.key),
        ca: writeTemp('trust.pem', pki.files['trust.pem']!),
      };
      for (const priority of ['routine', 'emergency', 'urgent'] as const) {
        const env = sampleEnvelope('evidence.request', { priority });
        expect((await submit(t.gw, aSys, signAs(env, aSys))).status).to.equal(202);
        ids[priority] = env.id;
      }
      await eventually(
        async () =>
          (await Promise.all(Object.values(ids).map((id) => t.gw.store.getMessage(id)))).every(
            (m) => m?.status === 'delivered',
          ),
        10_000,
        'delivery',
      );
    });
    after(async () => t?.stop());

    /**
     * The CLI with the gateway named by CASEBRIDGE_HOST and CASEBRIDGE_PORT, not --url.
     * Asynchronous: the gateway runs in this process and must keep answering.
     */
    function cli(
      args: string[],
      tty: boolean,
    ): Promise<{ status: number; stdout: string; stderr: string }> {
      const url = new URL(t.gw.url);
      return new Promise((resolve) => {
        execFile(
          process.execPath,
          [MAIN, ...args, '--cert', files.cert, '--key', files.key, '--ca', files.ca],
          {
            encoding: 'utf8',
            env: {
              ...process.env,
              CASEBRIDGE_URL: '',
              CASEBRIDGE_HOST: url.hostname,
              CASEBRIDGE_PORT: url.port,
              CASEBRIDGE_TTY: tty ? '1' : '',
            },
          },
          (err, stdout, stderr) =>
            resolve({ status: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
        );
      });
    }

    it('inbox: a table on a terminal, JSON through a pipe, filtered by priority, every page with --all', async function () {
      const tty = await cli(['inbox'], true);
      expect(tty.status, tty.stderr).to.equal(0);
      const lines = tty.stdout.trim().split('\n');
      expect(lines[0]).to.match(
        /^PRIORITY\s+TYPE\s+FROM\s+STATUS\s+DECISION\s+DEADLINE\s+CLAIMED BY/,
      );
      const order = ['emergency', 'urgent', 'routine'].map((p) =>
        lines.findIndex((l) => l.includes(ids[p]!)),
      );
      expect(order.every((i) => i > 1)).to.equal(true);
      expect([...order].sort((a, b) => a - b)).to.deep.equal(order);

      const pipe = await cli(['inbox'], false);
      expect(pipe.status, pipe.stderr).to.equal(0);
      const page = JSON.parse(pipe.stdout) as MessagePage;
      expect(page.items.map((m) => m.id)).to.deep.equal([
        ids['emergency'],
        ids['urgent'],
        ids['routine'],
      ]);
      expect(JSON.parse((await cli(['inbox', '--json'], true)).stdout)).to.deep.equal(page);

      const urgent = JSON.parse(
        (await cli(['inbox', '--priority', 'urgent'], false)).stdout,
      ) as MessagePage;
      expect(urgent.items.map((m) => m.id)).to.deep.equal([ids['urgent']]);

      const one = JSON.parse((await cli(['inbox', '--limit', '1'], false)).stdout) as MessagePage;
      expect(one.items).to.have.length(1);
      expect(one.nextCursor).to.be.a('string');
      const all = JSON.parse(
        (await cli(['inbox', '--limit', '1', '--all'], false)).stdout,
      ) as MessagePage;
      expect(all.items.map((m) => m.id)).to.deep.equal(page.items.map((m) => m.id));
    });

    it('get and thread: a view and a table on a terminal, JSON through a pipe', async function () {
      const id = ids['urgent']!;
      const view = await cli(['get', id], true);
      expect(view.status, view.stderr).to.equal(0);
      expect(view.stdout).to.match(new RegExp(`^Message\\s+${id}\\n`));
      expect(view.stdout).to.include('History');
      expect(view.stdout).to.include('Route     CN-GX-CZ → VN-LS');
      const json = JSON.parse((await cli(['get', id], false)).stdout) as MessageDetail;
      expect(json.id).to.equal(id);

      const thread = await cli(['thread', id], true);
      expect(thread.status, thread.stderr).to.equal(0);
      expect(thread.stdout).to.include('CN-GX-CZ → VN-LS');
      const items = (JSON.parse((await cli(['thread', id], false)).stdout) as MessagePage).items;
      expect(items.map((m) => m.id)).to.deep.equal([id]);

      const missing = await cli(['get', '00000000-0000-4000-8000-000000000000'], true);
      expect(missing.status).to.equal(1);
      expect(missing.stderr.trim().split('\n')).to.have.length(1);
      expect(missing.stderr).to.include('NOT_FOUND');
    });
  });
});
