// The undo stack a Checkpoint registers its steps on: undone last first, an undo that fails is logged
// and does not stop the others, steps handed over to an owner are not undone, success undoes nothing.
import { strict as assert } from 'node:assert';
import { Rollback, RollbackLog } from '../daemon/server/rollback';

/** A log whose error lines land in `lines`. */
function capturingLogger(lines: Array<{ message: string; meta: Record<string, unknown> }>): RollbackLog {
  return { error: (message, meta) => lines.push({ message, meta }) };
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

  it('an undo that fails is logged with its error, and the others still run', () => {
    const undo = new Rollback();
    const lines: Array<{ message: string; meta: Record<string, unknown> }> = [];
    const done: string[] = [];
    undo.push('one', () => done.push('one'));
    undo.push('two', () => {
      throw new Error('cannot');
    });
    undo.push('three', () => done.push('three'));
    const failure = new Error('failed');
    undo.run(failure, capturingLogger(lines));
    assert.deepEqual(done, ['three', 'one']);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].message, 'rollback: two failed');
    assert.equal((lines[0].meta.error as Error).message, 'cannot');
    assert.equal(lines[0].meta.cause, failure);
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
