// The per-identity policy without a daemon: the policy file's strict reading (every bad key named) and
// how one caller's policy resolves and judges inputs (the daemon-level tests are in security.test.ts).
import { strict as assert } from 'node:assert';
import { parsePolicy } from '../daemon/server/policy-file';
import { CallerPolicy, PolicyBook } from '../daemon/server/policy';
import type { Caller } from '../daemon/server/auth';
import type { NetnsHandle } from '../daemon/kernel/netns';

const alice: Caller = { id: 'uid:1000', label: 'alice', admin: false, uid: 1000, gid: 1000, groups: [] };
const robot: Caller = { id: 'cert:robot', label: 'robot', admin: false };
const root: Caller = { id: 'uid:0', label: 'root', admin: true, uid: 0 };

describe('the policy file and per-identity policy', function () {
  it('reads a policy file and refuses, naming the key, whatever it does not know', () => {
    const p = parsePolicy({
      adminUids: [7],
      adminIdentities: ['boss'],
      default: { handoverPrefixes: ['/run/app'] },
      callers: { 'uid:1000': { checkpointUids: ['self', 1001], marks: '*', maxBufferBytes: 1 << 20 }, 'cert:robot': { restoreNetns: ['daemon'] } },
    });
    assert.deepEqual(p.callers['uid:1000'], { checkpointUids: ['self', 1001], marks: '*', maxBufferBytes: 1 << 20 });
    const bad: Array<[unknown, RegExp]> = [
      [[], /top level/],
      [{ admins: [] }, /admins: unknown key/],
      [{ adminUids: ['0'] }, /adminUids\[0\]: give a whole number/],
      [{ default: { transparant: true } }, /default\.transparant: unknown key/],
      [{ callers: { alice: {} } }, /callers\.alice: an identity is uid:N/],
      [{ callers: { 'uid:1': { checkpointCgroups: ['relative'] } } }, /callers\.uid:1\.checkpointCgroups\[0\]: give an absolute path/],
      [{ callers: { 'uid:1': { receiverUids: [-1] } } }, /callers\.uid:1\.receiverUids\[0\]/],
      [{ callers: { 'uid:1': { maxBufferBytes: 1.5 } } }, /callers\.uid:1\.maxBufferBytes/],
      [{ callers: { 'uid:1': null } }, /callers\.uid:1: give an object/],
    ];
    for (const [doc, message] of bad) assert.throws(() => parsePolicy(doc), message, JSON.stringify(doc));
  });

  it("resolves a caller's rules over the defaults; admins are not narrowed", () => {
    const book = new PolicyBook(
      undefined,
      { default: { handoverPrefixes: ['/run/app'] }, callers: { 'uid:1000': { checkpointUids: ['self', 1001] } } },
      4 << 20,
    );
    const a = book.policyFor(alice);
    assert.deepEqual(a.checkpointUids, [1000, 1001]);
    assert.deepEqual(a.handoverPrefixes, ['/run/app'], 'from the default');
    assert.deepEqual(a.receiverUids, [1000], "built in: the caller's own uid");
    assert.equal(a.transparent, false);
    assert.equal(a.maxBufferBytes, 4 << 20);
    const r = book.policyFor(robot);
    assert.deepEqual([r.checkpointUids, r.restoreNetns, r.receiverUids], [[], [], []], 'a TLS identity: nothing unless named');
    const admin = book.policyFor(root);
    assert.deepEqual(
      [admin.checkpointUids, admin.handoverPrefixes, admin.marks, admin.maxBufferBytes, admin.transparent],
      [undefined, undefined, undefined, undefined, true],
    );
  });

  it('judges hand-over paths, receivers, marks and buffer sizes', () => {
    const p = new CallerPolicy(alice, {
      checkpointUids: ['self'],
      checkpointCgroups: '*',
      restoreNetns: ['daemon'],
      handoverPrefixes: ['/run/app/', '/srv/x'],
      receiverUids: ['self', 33],
      transparent: false,
      marks: [7],
      maxBufferBytes: 1000,
    });
    for (const ok of ['/run/app/h.sock', '/run/app/sub/h.sock', '/srv/x/a']) assert.ok(p.mayHandOverTo(ok), ok);
    for (const no of [
      '/run/app',
      '/run/appx/h.sock',
      '/run/app/../etc/h.sock',
      '/run/app//h.sock',
      '/run/app/./h.sock',
      'run/app/h.sock',
      '/tmp/h.sock',
      '/run/app/d/',
    ])
      assert.ok(!p.mayHandOverTo(no), no);
    assert.ok(p.mayReceive(1000) && p.mayReceive(33) && !p.mayReceive(0));
    const state = (mark: number, sndBuf = 100, rcvBuf = 100) => ({ options: { mark, sndBuf, rcvBuf } }) as never;
    p.checkSavedState(state(0));
    p.checkSavedState(state(7));
    assert.throws(() => p.checkSavedState(state(8)), /SO_MARK 8/);
    assert.throws(() => p.checkSavedState(state(0, 1001)), /at most 1000 bytes/);
    assert.throws(() => p.checkSavedState(state(0, 10, 5000)), /at most 1000 bytes/);
    assert.throws(() => p.checkRestoreOptions({ transparent: true }), /transparent/);
    p.checkRestoreNetns(undefined);
    // Another namespace as a restore opened it: only its identity and its name are consulted.
    const elsewhere = { dev: 1, ino: 2, id: '1:2', path: '/run/netns/elsewhere' } as unknown as NetnsHandle;
    assert.throws(() => p.checkRestoreNetns(elsewhere), /does not let you restore into \/run\/netns\/elsewhere/);
  });
});
