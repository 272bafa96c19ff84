import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { expect } from 'chai';
import { startGateway } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/ops/logger.js';
import { TopologyError } from '../../src/transport/index.js';
import { createTestVhost, type TestVhost } from '../helpers/amqp.js';
import { testEnv } from '../helpers/gateway.js';

const MAIN = join(fileURLToPath(new URL('../../../', import.meta.url)), 'dist/src/cli/main.js');

describe('gateway start against a broker with a conflicting queue (protocol §5.2)', function () {
  this.timeout(60_000);
  let vhost: TestVhost;

  before(async function () {
    vhost = await createTestVhost();
    // Someone created the inbox as a classic queue.
    const conn = await amqp.connect(vhost.url);
    const ch = await conn.createChannel();
    await ch.assertQueue('casebridge.inbox.VN-LS', { durable: true });
    await conn.close();
  });
  after(async () => vhost?.cleanup());

  it('refuses to start, naming the queue, and leaves nothing running', async function () {
    const env = await testEnv({ CASEBRIDGE_AMQP_URL: vhost.url });
    let err: unknown;
    try {
      const gw = await startGateway({
        config: loadConfig(env),
        logger: createLogger('error', true),
      });
      await gw.close();
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(TopologyError);
    expect((err as TopologyError).resource).to.equal('casebridge.inbox.VN-LS');
    expect((err as TopologyError).code).to.equal('TOPOLOGY_MISMATCH');
  });

  it('makes `casebridge serve` exit 2 with one line naming the queue', async function () {
    const env = await testEnv({ CASEBRIDGE_AMQP_URL: vhost.url, CASEBRIDGE_LOG_LEVEL: 'error' });
    const r = spawnSync(process.execPath, [MAIN, 'serve'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).to.equal(2);
    const ours = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('casebridge:'));
    expect(ours).to.have.length(1);
    expect(ours[0]).to.include('casebridge.inbox.VN-LS');
  });
});
