// The undo stack a Checkpoint registers its steps on: undone last first, an undo that fails is logged
// and does not stop the others, steps handed over to an owner are not undone, success undoes nothing.
import { strict as assert } from 'node:assert';
import { Writable } from 'node:stream';
import * as winston from 'winston';
import { Rollback } from '../daemon/server/rollback';

/** A logger whose lines land in `lines` (as parsed JSON). */
function capturingLogger(lines: Array<Record<string, unknown>>): winston.Logger {
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return winston.createLogger({ format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
}

describe('rollback', () => {
  it('undoes every step, last first, each given the failure', () => {
    const undo = new Rollback();
    const done: string[] = [];
    const failure = new Error('step 3 failed');
    for (const step of ['one', 'two']) undo.push(step, (cause) => done.push(`${step}: ${(cause as Error).message}`));
    undo.run(failure, capturingLogger([]));
    assert.deepEqual(done, ['two: step 3 failed', 'one: step 3 failed']);
  });

  it('an undo that fails is logged with its error, and the others still run', async () => {
    const undo = new Rollback();
    const lines: Array<Record<string, unknown>> = [];
    const done: string[] = [];
    undo.push('one', () => done.push('one'));
    undo.push('two', () => {
      throw new Error('cannot');
    });
    undo.push('three', () => done.push('three'));
    undo.run(new Error('failed'), capturingLogger(lines));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(done, ['three', 'one']);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].message, 'rollback: two failed');
    assert.equal(lines[0].level, 'error');
  });

  it('steps handed over are not undone; after release nothing is', () => {
    const undo = new Rollback();
    const done: string[] = [];
    undo.push('before', () => done.push('before'));
    const mark = undo.mark();
    undo.push('taken', () => done.push('taken'));
    undo.handedOver(mark);
    undo.push('owner', () => done.push('owner'));
    undo.run(new Error('failed'), capturingLogger([]));
    assert.deepEqual(done, ['owner', 'before']);
    undo.run(new Error('again'), capturingLogger([]));
    assert.deepEqual(done, ['owner', 'before'], 'a rollback runs once');
    const released = new Rollback();
    released.push('step', () => done.push('step'));
    released.release();
    released.run(new Error('late'), capturingLogger([]));
    assert.deepEqual(done, ['owner', 'before']);
  });
});
