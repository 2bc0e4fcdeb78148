// What a listener does with the file it finds at its Unix socket path (issue 9). A real soccrd started
// with `--listen unix:///PATH`: a socket file whose listener is gone is replaced; anything else stays
// untouched and the daemon refuses to start, naming the path: a regular file, a FIFO, a symbolic link,
// a directory, and a live listener, also one whose backlog is full (connect answers EAGAIN, not
// ECONNREFUSED). The hand-over receiver (receiver/receiver.ts) follows the same rules, and neither
// changes a socket file's mode or group through a symbolic link.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { Stats, chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoccrClient } from '../client/client';
import { SocketReceiver } from '../receiver/receiver';
import { restrictSocketFile } from '../daemon/kernel/socket-file';
import * as N from '../daemon/kernel/native';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { unixSocketAt } from './support/unix-socket';

/** Connects to `path` until the listener's backlog is full (connect answers EAGAIN); at most 16 tries. */
async function fillBacklog(path: string, opened: Socket[]): Promise<void> {
  for (let i = 0; i < 16; i++) {
    const outcome = await new Promise<string>((resolve) => {
      const s = connect(path);
      opened.push(s);
      s.once('connect', () => resolve('connected'));
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    if (outcome === 'EAGAIN') return;
    assert.equal(outcome, 'connected');
  }
  assert.fail(`the backlog of ${path} never filled`);
}

/** What identifies a file and its content, to check that it was left exactly as it was. */
function fingerprint(path: string): { ino: number; mode: number; content?: string; target?: string } {
  const st: Stats = lstatSync(path);
  return {
    ino: st.ino,
    mode: st.mode,
    content: st.isFile() ? readFileSync(path, 'utf8') : undefined,
    target: st.isSymbolicLink() ? readlinkSync(path) : undefined,
  };
}

/** Starts a daemon that also listens on `path`, expecting it to refuse: exit non-zero with a message naming the path. */
async function expectRefusal(path: string, why: RegExp): Promise<void> {
  await assert.rejects(DaemonProcess.start(['--listen', `unix://${path}`]), (err: Error) => {
    assert.match(err.message, /exited at start \(code [1-9]\d*\)/);
    const reason = err.message.split(`cannot listen on unix://${path}: `)[1] ?? '';
    assert.ok(reason.includes(path), `the reason names the path: ${err.message}`);
    assert.match(err.message, why);
    return true;
  });
}

describe('the listen path at start', function () {
  this.timeout(60_000);
  let dir: string;
  const fds: number[] = [];
  const sockets: Socket[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'soccrt-lp'));
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs()}\n`);
    await cleanupDaemons();
    for (const s of sockets.splice(0)) s.destroy();
    for (const fd of fds.splice(0)) N.closeQuietly(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a regular file stays untouched and the daemon refuses to start, naming it', async () => {
    const path = join(dir, 'soccrd.sock');
    writeFileSync(path, 'not a socket\n', { mode: 0o644 });
    const before = fingerprint(path);
    await expectRefusal(path, /is a regular file, not a socket/);
    assert.deepEqual(fingerprint(path), before);
  });

  it('a FIFO stays untouched and the daemon refuses to start, naming it', async () => {
    const path = join(dir, 'soccrd.sock');
    const r = spawnSync('mkfifo', ['-m', '0600', path]);
    assert.equal(r.status, 0, `mkfifo: ${r.stderr.toString()}`);
    const before = fingerprint(path);
    await expectRefusal(path, /is a FIFO, not a socket/);
    assert.deepEqual(fingerprint(path), before);
    assert.ok(lstatSync(path).isFIFO());
  });

  it('a symbolic link stays untouched, and so does its target, and the daemon refuses to start, naming it', async () => {
    const target = join(dir, 'precious');
    writeFileSync(target, 'keep me\n', { mode: 0o600 });
    const path = join(dir, 'soccrd.sock');
    symlinkSync(target, path);
    const [link, file] = [fingerprint(path), fingerprint(target)];
    await expectRefusal(path, /is a symbolic link, not a socket/);
    assert.deepEqual(fingerprint(path), link);
    assert.deepEqual(fingerprint(target), file);
  });

  it('a directory stays untouched and the daemon refuses to start, naming it', async () => {
    const path = join(dir, 'soccrd.sock');
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'x');
    await expectRefusal(path, /is a directory, not a socket/);
    assert.equal(readFileSync(join(path, 'inside'), 'utf8'), 'x');
  });

  it('a live listener whose backlog is full is not taken for a dead one: its socket file stays and the daemon refuses', async () => {
    const path = join(dir, 'soccrd.sock');
    fds.push(unixSocketAt(path, 0));
    await fillBacklog(path, sockets);
    const before = fingerprint(path);
    await expectRefusal(path, /another process is listening on .* \(its backlog is full\)/);
    assert.deepEqual(fingerprint(path), before);
  });

  it('a live listener: its socket file stays and the daemon refuses', async () => {
    const path = join(dir, 'soccrd.sock');
    fds.push(unixSocketAt(path, 16));
    const before = fingerprint(path);
    await expectRefusal(path, /another process is listening on .* \(it accepted a connection\)/);
    assert.deepEqual(fingerprint(path), before);
  });

  it('a socket file whose listener is gone is replaced, and the daemon serves there', async () => {
    const path = join(dir, 'soccrd.sock');
    N.close(unixSocketAt(path)); // bound, then closed: the file stays, connect is refused
    const d = await DaemonProcess.start(['--listen', `unix://${path}`]);
    assert.ok(lstatSync(path).isSocket());
    assert.equal((lstatSync(path).mode & 0o777).toString(8), '600');
    assert.match(d.output, /"message":"removed a stale socket file"/);
    const client = new SoccrClient(`unix://${path}`, { timeoutMs: 5000 });
    try {
      assert.match((await client.getVersion()).version, /^\d/);
    } finally {
      client.close();
    }
  });

  it('the hand-over receiver: a live listener with a full backlog is refused (EADDRINUSE) and its file stays; a stale socket is replaced', async () => {
    const busy = join(dir, 'busy.sock');
    fds.push(unixSocketAt(busy, 0));
    await fillBacklog(busy, sockets);
    const before = fingerprint(busy);
    await assert.rejects(SocketReceiver.listen(busy), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EADDRINUSE');
      assert.ok(err.message.includes(busy), err.message);
      return true;
    });
    assert.deepEqual(fingerprint(busy), before);

    const stale = join(dir, 'stale.sock');
    N.close(unixSocketAt(stale));
    const r = await SocketReceiver.listen(stale);
    try {
      assert.ok(lstatSync(stale).isSocket());
      assert.equal((lstatSync(stale).mode & 0o777).toString(8), '600');
    } finally {
      await r.close();
    }
  });

  it('the hand-over receiver: a symbolic link at its path is refused (EEXIST), and the link and its target stay', async () => {
    const target = join(dir, 'precious');
    writeFileSync(target, 'keep me\n', { mode: 0o600 });
    const path = join(dir, 'handover.sock');
    symlinkSync(target, path);
    const [link, file] = [fingerprint(path), fingerprint(target)];
    await assert.rejects(SocketReceiver.listen(path), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EEXIST');
      assert.match(err.message, /is a symbolic link, not a socket/);
      return true;
    });
    assert.deepEqual(fingerprint(path), link);
    assert.deepEqual(fingerprint(target), file);
  });

  it("setting a socket file's mode and group never follows a symbolic link", () => {
    const target = join(dir, 'precious');
    writeFileSync(target, 'keep me\n');
    chmodSync(target, 0o600);
    const path = join(dir, 'soccrd.sock');
    symlinkSync(target, path);
    assert.throws(() => restrictSocketFile(path, 0o666, 65534), new RegExp(`${path} is a symbolic link now, not the socket just bound there`));
    const st = lstatSync(target);
    assert.equal((st.mode & 0o777).toString(8), '600');
    assert.equal(st.gid, 0);
  });
});
