// What may be touched, and how much one caller may hold: processes outside the checkpoint policy and
// namespaces outside the restore policy are refused (their sockets untouched), and per-caller limits on
// sessions and running calls give RESOURCE_EXHAUSTED.
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { SessionState, SoccrClient, isServiceError } from '../client/client';
import { DaemonProcess, cleanupDaemons } from '../lab/daemon';
import { killAllEndpoints } from '../lab/endpoint';
import { leftoverNamespaces } from '../lab/netns';
import { KiB, Pair, connectPair, destroyTopologies, socketPath } from '../lab/scenario';

async function expectCode(p: Promise<unknown>, code: grpc.status, what: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(isServiceError(err), `${what}: ${String(err)}`);
    assert.equal(grpc.status[err.code], grpc.status[code], `${what}: ${err.details}`);
    return;
  }
  assert.fail(`${what}: succeeded, expected ${grpc.status[code]}`);
}

/** The connection still carries traffic both ways, so it was never frozen for good. */
async function assertFlows(p: Pair): Promise<void> {
  await p.owner.command('read', { on: true });
  await p.peer.command('read', { on: true });
  const o0 = await p.owner.status();
  const q0 = await p.peer.status();
  await p.owner.command('write', { bytes: 64 * KiB });
  await p.peer.command('write', { bytes: 64 * KiB });
  await p.peer.until((s) => s.received === o0.sent + 64 * KiB, 10_000, 'owner bytes');
  const o1 = await p.owner.until((s) => s.received === q0.sent + 64 * KiB, 10_000, 'peer bytes');
  assert.equal(o1.error, null);
}

describe('what may be touched, and per-caller limits', function () {
  this.timeout(60_000);
  let client: SoccrClient | undefined;

  afterEach(async () => {
    client?.close();
    client = undefined;
    await killAllEndpoints();
    await cleanupDaemons();
    destroyTopologies();
  });

  after(() => assert.deepEqual(leftoverNamespaces(), []));

  it('a process outside the checkpoint policy is refused and its socket untouched', async () => {
    const p = await connectPair('ipv4', 1);
    for (const args of [
      ['--checkpoint-uid', '4242'],
      ['--checkpoint-cgroup', '/no/such/slice'],
      ['--checkpoint-pid', '1'],
    ]) {
      const d = await DaemonProcess.start(args);
      client = new SoccrClient(d.address);
      await expectCode(client.checkpointToFile(p.owner.pid, { all: true }, socketPath('ck')), grpc.status.PERMISSION_DENIED, args.join(' '));
      assert.deepEqual(await client.listSessions(), [], 'no session was created');
      client.close();
      await d.cleanup();
    }
    await assertFlows(p);
    // And the same daemon settings let an allowed process through.
    const d = await DaemonProcess.start(['--checkpoint-pid', String(p.owner.pid)]);
    client = new SoccrClient(d.address);
    const ck = await client.checkpointToFile(p.owner.pid, { all: true }, socketPath('ck'));
    await client.resume(ck.header.sessionId);
  });

  it('a namespace outside the restore policy is refused, and nothing is rebuilt', async () => {
    const p = await connectPair('ipv4', 2);
    const d = await DaemonProcess.start(['--restore-netns', p.topo.nsPath(p.topo.hosts[0])]);
    client = new SoccrClient(d.address);
    await p.owner.command('quiesce');
    const file = socketPath('ck');
    const ck = await client.checkpointToFile(p.owner.pid, { all: true }, file);
    await expectCode(
      client.restoreFromFile(file, { netns: p.topo.nsPath(p.topo.hosts[1]) }),
      grpc.status.PERMISSION_DENIED,
      'restore into a namespace outside the policy',
    );
    const others = (await client.listSessions()).filter((s) => s.sessionId !== ck.header.sessionId);
    assert.deepEqual(others, [], 'no restore session');
    await client.resume(ck.header.sessionId);
  });

  it('a caller holds at most its quota of sessions (RESOURCE_EXHAUSTED past it)', async () => {
    const p = await connectPair('ipv4', 1);
    const d = await DaemonProcess.start(['--max-sessions-per-caller', '1']);
    client = new SoccrClient(d.address);
    process.kill(p.owner.pid, 'SIGSTOP');
    try {
      const first = await client.checkpointToFile(p.owner.pid, { all: true }, socketPath('ck'));
      await expectCode(client.checkpointToFile(p.owner.pid, { all: true }, socketPath('ck')), grpc.status.RESOURCE_EXHAUSTED, 'a second session');
      const info = await client.resume(first.header.sessionId);
      assert.equal(info.state, SessionState.RESUMED);
      const again = await client.checkpointToFile(p.owner.pid, { all: true }, socketPath('ck'));
      await client.resume(again.header.sessionId);
    } finally {
      process.kill(p.owner.pid, 'SIGCONT');
    }
    await assertFlows(p);
  });

  it('a caller has at most its quota of calls running (RESOURCE_EXHAUSTED past it)', async () => {
    const d = await DaemonProcess.start(['--max-calls-per-caller', '1']);
    client = new SoccrClient(d.address);
    // A Restore whose stream stays open is a running call.
    // eslint-disable-next-line require-yield -- a Restore stream that stays open and sends nothing: the call runs on
    const open = (async function* () {
      await new Promise((r) => setTimeout(r, 1500));
    })();
    const pending = client.restore({}, open).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 300));
    await expectCode(client.getVersion(), grpc.status.RESOURCE_EXHAUSTED, 'a second call while one runs');
    await pending;
    assert.ok((await client.getVersion()).version, 'the slot is free again');
  });
});
