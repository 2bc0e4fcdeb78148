// A second language against real daemons (issue 15): the Python client (clients/python/soccr_client.py,
// Debian's python3-grpcio, its modules generated from protos/ here by Debian's protoc) checkpoints into
// a file, restores it held and aborts it, migrates live connections from host A's soccrd to host B's,
// and reads the google.rpc.ErrorInfo of failed calls; and the Python receiver of docs/handover.md, taken
// from the document as it is, receives a real hand-off and serves the very sockets (their unread bytes
// included). Every byte is checked by the lab's fixtures or by the peers themselves.
import { strict as assert } from 'node:assert';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoccrClient } from '../client/client';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { Lan, destroyLans, leftoverLanNamespaces } from '../lab/lan';
import { MultiFixture, exchangeProblems, untilExchanged } from '../lab/multi';
import { DEBIAN_PYTHON } from '../lab/preflight';
import { sleep, socketPath } from '../lab/scenario';
import { MigrationLab, labLockEntries, resumeAtSource, startMigrationLab, tearDownLabs } from './support/migration-lab';

const ROOT = join(__dirname, '..', '..');
const CLIENT = join(ROOT, 'clients', 'python', 'soccr_client.py');
const ROLES = join(ROOT, 'test', 'fixtures', 'python-handover.py');

/** Runs the Python client with `args`; its one JSON line, or a failure with its stderr. */
function pyClient(stubs: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(DEBIAN_PYTHON, [CLIENT, '--stubs', stubs, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python ${args[0]}: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>);
    });
  });
}

/** A Python role of test/fixtures/python-handover.py in namespace `ns`, and its JSON lines as they come. */
class PyRole {
  readonly lines: Array<Record<string, unknown>> = [];
  private stderr = '';
  private exitCode: number | null | undefined;
  readonly proc: ChildProcess;

  constructor(ns: string, args: string[]) {
    this.proc = spawn('ip', ['netns', 'exec', ns, DEBIAN_PYTHON, ROLES, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
        buf = buf.slice(i + 1);
      }
    });
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.proc.on('exit', (code) => (this.exitCode = code));
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** The first line that has `key`; bounded by `timeoutMs`. */
  async line(key: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.lines.find((l) => key in l);
      if (found) return found;
      if (this.exitCode !== undefined) break;
      await sleep(50);
    }
    throw new Error(`no "${key}" from ${this.proc.spawnargs.slice(4).join(' ')} (exit ${String(this.exitCode)}): ${this.stderr}`);
  }

  kill(): void {
    if (this.exitCode === undefined) this.proc.kill('SIGKILL');
  }
}

describe('Python: the client through two real daemons, and the receiver of docs/handover.md', function () {
  this.timeout(240_000);
  let stubs: string;
  const roles: PyRole[] = [];

  before(() => {
    stubs = mkdtempSync(join(tmpdir(), 'soccr-pystubs-'));
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs()}\n`);
    for (const r of roles.splice(0)) r.kill();
    await tearDownLabs();
  });

  after(() => {
    rmSync(stubs, { recursive: true, force: true });
    assert.deepEqual(leftoverLanNamespaces(), [], 'namespaces left behind');
  });

  it('reads GetVersion and the ErrorInfo of failed calls (reason, domain, errno, session)', async () => {
    const t = await startMigrationLab(1);
    const node = new SoccrClient(t.a.address);
    const v = await node.getVersion();
    node.close();
    assert.deepEqual(await pyClient(stubs, ['version', '--daemon', t.a.address]), {
      version: v.version,
      stream_format: v.streamFormat,
      kernel_release: v.kernelRelease,
    });
    const gone = spawn('true');
    await new Promise((resolve) => gone.on('exit', resolve));
    const errors = await pyClient(stubs, ['errors', '--daemon', t.a.address, '--gone-pid', String(gone.pid), '--pid', String(t.server.pid)]);
    const info = (reason: string, code: string, metadata: Record<string, string> = {}): Record<string, unknown> => ({
      reason,
      code,
      domain: 'soccrd.io',
      metadata,
    });
    const pick = (e: unknown): Record<string, unknown> => {
      const { reason, code, domain, metadata } = e as Record<string, unknown>;
      return { reason, code, domain, metadata };
    };
    assert.deepEqual(pick(errors.get_unknown_session), info('NO_SUCH_SESSION', 'NOT_FOUND', { session: 'no-such-session' }));
    assert.deepEqual(pick(errors.checkpoint_gone_pid), info('NO_SUCH_PROCESS', 'NOT_FOUND', { errno: 'ESRCH' }));
    assert.deepEqual(pick(errors.checkpoint_no_fd), info('NO_SUCH_FD', 'NOT_FOUND', { errno: 'EBADF' }));
    assert.deepEqual(pick(errors.checkpoint_nothing), info('BAD_REQUEST', 'INVALID_ARGUMENT'));
    assert.deepEqual(pick(errors.negative_page_size), info('BAD_REQUEST', 'INVALID_ARGUMENT'));
    // The status inside the details is the call's own.
    const d = errors.get_unknown_session as { status_code: number; message: string };
    assert.equal(d.status_code, 5);
    assert.match(d.message, /no session no-such-session/);
  });

  it('checkpoints into a file on A, restores it held on B and aborts it, resumes on A: every byte exact at the source', async () => {
    const t: MigrationLab = await startMigrationLab(3);
    await t.server.quiesce();
    const dir = mkdtempSync(join(tmpdir(), 'soccr-pyck-'));
    try {
      const file = join(dir, 'ck.soccr');
      const ck = await pyClient(stubs, ['checkpoint', '--daemon', t.a.address, '--pid', String(t.server.pid), '--out', file]);
      assert.equal(ck.connections, 3);
      assert.equal(ck.state, 1, 'FROZEN');
      assert.equal(readFileSync(file).subarray(0, 6).toString('latin1'), 'SOCCR\x01');
      const restored = await pyClient(stubs, ['restore', '--daemon', t.b.address, '--in', file, '--netns', t.lan.nsPath(t.lan.ns.B)]);
      assert.deepEqual([restored.held_state, restored.connections, restored.aborted_state], [2, 3, 5], 'HELD with 3 connections, then ABORTED');
      assert.deepEqual(await pyClient(stubs, ['resume', '--daemon', t.a.address, '--session', String(ck.session)]), { state: 3 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const [s, c] = await resumeAtSource(t);
    assert.deepEqual(exchangeProblems(s, c), []);
    assert.deepEqual(labLockEntries(t), { a: 0, b: 0 });
  });

  it('migrates 3 streaming connections from A to B (Checkpoint relayed frame by frame into Restore): every byte exact, no RST, no FIN', async () => {
    const t = await startMigrationLab(3);
    const { offsets } = await t.server.quiesce();
    const path = socketPath('pydeliver');
    const receiver = await MultiFixture.start(t.lan.ns.B, { mode: 'adopt', unixPath: path, continueFrom: offsets, streaming: true, bytesPerTick: 8 * 1024 });
    const r = await pyClient(stubs, [
      'migrate',
      '--from',
      t.a.address,
      '--to',
      t.b.address,
      '--pid',
      String(t.server.pid),
      '--netns',
      t.lan.nsPath(t.lan.ns.B),
      '--deliver',
      path,
      '--before-resume',
      t.lan.moveServiceCommand('A', 'B'),
    ]);
    assert.deepEqual([r.connections, r.destination_state, r.source_state], [3, 3, 4], '3 connections, destination RESUMED, source RELEASED');
    await receiver.waitEvent('handover-live', 15_000);
    await sleep(1000);
    t.server.kill();
    await t.clients.stream(false);
    await receiver.stream(false);
    const [cs, rs] = await untilExchanged(t.clients, receiver, 60_000);
    assert.deepEqual(exchangeProblems(cs, rs), []);
    assert.ok(
      rs.connections.every((x) => x.received > 0),
      'every connection carried traffic at B',
    );
  });

  it("docs/handover.md's Python receiver takes a real hand-off: the same sockets, their unread bytes included", async () => {
    // The receiver exactly as the document shows it.
    const doc = readFileSync(join(ROOT, 'docs', 'handover.md'), 'utf8');
    const code = /### A receiver, in Python\n\n```python\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(code, 'the Python receiver in docs/handover.md');
    const dir = mkdtempSync(join(tmpdir(), 'soccr-pyrx-'));
    const module = join(dir, 'handover_receiver.py');
    writeFileSync(module, code);
    const lan = Lan.create();
    try {
      const daemon = await DaemonProcess.start({ netns: lan.ns.A });
      const client = new SoccrClient(daemon.address, { timeoutMs: 30_000 });
      const count = 4;
      const port = 5600;
      const owner = new PyRole(lan.ns.A, ['owner', String(port), String(count)]);
      roles.push(owner);
      await sleep(300); // the owner binds before the peer connects
      const peer = new PyRole(lan.ns.A, ['peer', String(port), String(count)]);
      roles.push(peer);
      await owner.line('ready', 30_000);
      await peer.line('ready', 30_000);
      const path = socketPath('pyreceiver');
      const receiver = new PyRole(lan.ns.A, ['receiver', module, path]);
      roles.push(receiver);
      for (let i = 0; i < 200 && !(existsSync(path) && lstatSync(path).isSocket()); i++) await sleep(50);
      const r = await client.handoff(owner.pid, path, { all: true, killOld: true });
      client.close();
      assert.equal(r.sockets.length, count);
      assert.equal(r.oldOwnerKilled, true);
      const got = (await receiver.line('sockets', 30_000)).sockets as Array<{ local: number; remote: number; got: string }>;
      assert.equal(got.length, count);
      assert.ok(
        got.every((g) => g.local === port && /^before \d\n$/.test(g.got)),
        JSON.stringify(got),
      );
      // Each peer connection got back, from the new owner, the line it had sent to the old one.
      const received = (await peer.line('received', 30_000)).received as string[];
      assert.deepEqual(
        received,
        Array.from({ length: count }, (_, i) => `after before ${i}\n`),
      );
    } finally {
      for (const r of roles.splice(0)) r.kill();
      await cleanupDaemons();
      destroyLans();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
