import { expect } from 'chai';
import winston from 'winston';
import { startGateway } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { DataDirLock } from '../../src/store/sqlite/dir-lock.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { ON_POSTGRES } from '../helpers/database.js';
import { identity, releaseTestEnv, signAs, submit, testEnv } from '../helpers/gateway.js';
import { GatewayProcess } from '../faults/support.js';

const logger = winston.createLogger({ silent: true });

/** protocol §11: an embedded store belongs to one gateway process. */
describe('store: one gateway process per embedded data directory (protocol §11)', function () {
  this.timeout(60_000);
  before(function () {
    // On PostgreSQL several processes share the database by design.
    if (ON_POSTGRES) this.skip();
  });

  it('stops a second gateway on the same data directory, in this process or another, and leaves the first serving', async function () {
    const env = await testEnv();
    const first = await startGateway({ config: loadConfig(env), logger });
    try {
      const second = await startGateway({ config: loadConfig(env), logger }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(second).to.be.instanceOf(ConfigError);
      expect((second as ConfigError).variable).to.equal('CASEBRIDGE_DATA_DIR');
      expect(DataDirLock.isHeld(env['CASEBRIDGE_DATA_DIR']!)).to.equal(true);

      const other = new GatewayProcess(env);
      const failed = await other.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failed, 'the second process did not start').to.be.instanceOf(Error);
      expect((await other.exit()).code).to.equal(2);
      const lines = other.stderrTail.trim().split('\n');
      expect(lines.at(-1)).to.match(/^casebridge: configuration: CASEBRIDGE_DATA_DIR: is in use/);

      const sys = await identity('CN-GX-CZ', 'system');
      const res = await submit(first, sys, signAs(sampleEnvelope('evidence.request'), sys));
      expect(res.status).to.equal(202);
    } finally {
      await first.close();
    }
    // Closed: the directory is free, and the next gateway starts on it.
    expect(DataDirLock.isHeld(env['CASEBRIDGE_DATA_DIR']!)).to.equal(false);
    const again = await startGateway({ config: loadConfig(env), logger });
    await again.close();
    await releaseTestEnv(env);
  });

  it('frees the directory when the process holding it is killed with SIGKILL', async function () {
    const env = await testEnv();
    const g = new GatewayProcess(env);
    try {
      await g.start();
      expect(DataDirLock.isHeld(env['CASEBRIDGE_DATA_DIR']!)).to.equal(true);
      await g.kill9();
      expect(DataDirLock.isHeld(env['CASEBRIDGE_DATA_DIR']!)).to.equal(false);
      const after = await startGateway({ config: loadConfig(env), logger });
      await after.close();
    } finally {
      await g.kill9();
      await releaseTestEnv(env);
    }
  });
});
