// The daemon-wide budget's bookkeeping (daemon/custody/budget.ts), without root: a charge takes bytes or
// throws LIMIT and takes nothing, gives them back exactly once, and a session gives its charge back
// however it ends (aborted, expired). test/budget.test.ts checks the same against a real daemon.
import { strict as assert } from 'node:assert';
import { totalmem } from 'node:os';
import { ResourceBudget, defaultBudgetLimits, kernelCost, parseBytes } from '../daemon/custody/budget';
import { SessionManager } from '../daemon/custody/sessions';
import { silentLogger } from '../daemon/log';
import { SoccrError } from '../protocol/errors';

const used = (b: ResourceBudget): Record<string, number> => Object.fromEntries(b.usage().map((p) => [p.pool, p.used]));

function limitError(fn: () => void): SoccrError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SoccrError, String(err));
    assert.equal(err.kind, 'LIMIT');
    return err;
  }
  return assert.fail('no LIMIT error');
}

describe('the daemon-wide budget (bookkeeping)', () => {
  it('a charge takes bytes up to the limit; past it LIMIT, and nothing is taken', () => {
    const b = new ResourceBudget({ bufferedBytes: 1000, kernelBytes: 500 });
    const a = b.charge('buffered', 'stream A');
    const c = b.charge('buffered', 'stream B');
    a.add(600, 'connection 0');
    c.add(400, 'connection 0');
    assert.deepEqual(used(b), { buffered: 1000, kernel: 0 });
    const err = limitError(() => c.add(1, 'connection 1'));
    assert.match(err.message, /queue bytes buffered by streams.*stream B.*--max-buffered-bytes/);
    assert.deepEqual(used(b), { buffered: 1000, kernel: 0 }, 'the refused charge took nothing');
    assert.equal(c.held, 400);
    // The pools are apart: the kernel pool has its own limit.
    const k = b.charge('kernel', 'session S');
    k.add(500, 'connection 0');
    limitError(() => k.add(1, 'connection 1'));
    a.sub(100);
    c.add(100, 'connection 1');
    assert.deepEqual(used(b), { buffered: 1000, kernel: 500 });
  });

  it('set() moves a charge to a size; release() gives everything back exactly once, and the charge takes nothing more', () => {
    const b = new ResourceBudget({ bufferedBytes: 1000, kernelBytes: 1000 });
    const a = b.charge('buffered', 'checkpoint');
    a.set(300, 'connection 0');
    a.set(100, 'connection 1');
    assert.equal(used(b).buffered, 100);
    limitError(() => a.set(1001, 'connection 2'));
    assert.equal(a.held, 100, 'a refused set() keeps what was held');
    const other = b.charge('buffered', 'another');
    other.add(50, 'x');
    a.release();
    a.release();
    a.sub(10);
    assert.equal(used(b).buffered, 50, 'released once; the other charge untouched');
    assert.throws(
      () => a.add(1, 'more'),
      (err: unknown) => err instanceof SoccrError && err.kind === 'SESSION_STATE',
    );
    other.release();
    assert.deepEqual(used(b), { buffered: 0, kernel: 0 });
  });

  it('a rebuilt socket costs its queue bytes plus saved buffer sizes beyond what the host gives without forcing', () => {
    const caps = { sndBuf: 4 << 20, rcvBuf: 6 << 20 };
    const options = { sndBuf: 87040, rcvBuf: 131072 } as Parameters<typeof kernelCost>[0]['options'];
    assert.equal(kernelCost({ inqLen: 1000, outqLen: 24, options }, caps), 1024);
    assert.equal(kernelCost({ inqLen: 0, outqLen: 0, options: { ...options, sndBuf: (4 << 20) + 10, rcvBuf: 0x7fffffff } }, caps), 10 + 0x7fffffff - (6 << 20));
  });

  it('byte counts: numbers with K, M, G, T suffixes; defaults from the machine', () => {
    assert.equal(parseBytes('x', '4096'), 4096);
    assert.equal(parseBytes('x', '1K'), 1024);
    assert.equal(parseBytes('x', '512M'), 512 << 20);
    assert.equal(parseBytes('x', '2GiB'), 2 * 1024 ** 3);
    assert.equal(parseBytes('x', '1tb'), 1024 ** 4);
    assert.equal(parseBytes('x', 77), 77);
    for (const bad of ['', '-1', '1.5G', 'G', '10X', '1 0']) assert.throws(() => parseBytes('--max-buffered-bytes', bad), /--max-buffered-bytes/, bad);
    assert.throws(() => parseBytes('x', -3), /whole number/);
    const d = defaultBudgetLimits();
    assert.equal(d.bufferedBytes, Math.floor(totalmem() / 8));
    assert.ok(d.kernelBytes > 0 && Number.isSafeInteger(d.kernelBytes), String(d.kernelBytes));
  });

  it('a restore session gives its charge back when it is aborted and when its lease ends, once', async () => {
    const b = new ResourceBudget({ bufferedBytes: 0, kernelBytes: 10_000 });
    const sessions = new SessionManager({
      defaultLeaseMs: 30_000,
      maxLeaseMs: 60_000,
      retainEndedMs: 60_000,
      lockGraceMs: 0,
      netlock: undefined,
      log: silentLogger(),
    });
    try {
      const aborted = sessions.createRestore(1, 30_000, '', '');
      aborted.charge = b.charge('kernel', `restore session ${aborted.id}`);
      aborted.charge.add(3000, 'connection 0');
      sessions.markHeld(aborted);
      const expiring = sessions.createRestore(1, 100, '', '');
      expiring.charge = b.charge('kernel', `restore session ${expiring.id}`);
      expiring.charge.add(4000, 'connection 0');
      sessions.markHeld(expiring);
      assert.equal(used(b).kernel, 7000);
      sessions.abort(aborted);
      assert.equal(used(b).kernel, 4000);
      const deadline = Date.now() + 5000;
      while (expiring.state !== 'EXPIRED' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(expiring.state, 'EXPIRED');
      assert.equal(used(b).kernel, 0);
      assert.throws(() => sessions.abort(aborted), /ABORTED/);
      assert.equal(used(b).kernel, 0, 'a second end gives nothing back twice');
    } finally {
      await sessions.shutdown();
    }
  });
});
