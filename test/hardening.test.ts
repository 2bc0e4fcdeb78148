// The daemon's edges against a caller or a local user who would use it to get further (issue 12), on
// real daemons and real processes: the state directory only root can change, its files never opened
// through a symbolic link; the checkpoint policy decided on facts confirmed against the pidfd (every uid
// of a setuid-style process, a pid reused meanwhile); no daemon checkpoints itself or another soccrd;
// half-closed restores inject their segment only to an address of the target namespace (nothing
// spoofed on the wire); install-service points ExecStart only at code root alone can change.
import { strict as assert } from 'node:assert';
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { AddressInfo, Server, Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SessionState, SoccrClient, isServiceError } from '../client/client';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { JOURNAL_FILE } from '../daemon/custody/journal';
import { ProcessHandle } from '../daemon/repair/acquire';
import { finishRestoredAll, pause, readTcpInfoHead, restore, resume, save, silentClose } from '../daemon/repair/engine';
import { SoccrError } from '../protocol/errors';
import { TcpState, stateName } from '../protocol/saved-state';
import { killAllEndpoints } from '../lab/endpoint';
import { PEER_V4, SERVICE_V4, leftoverNamespaces, run } from '../lab/netns';
import { connectPair, destroyTopologies, setUp } from '../lab/scenario';
import { NOBODY, OtherUserCopy } from './support/other-user';

/** The status a call ends with ('OK' or its name) and its details. */
async function outcome(p: Promise<unknown>): Promise<{ code: string; details: string }> {
  try {
    await p;
    return { code: 'OK', details: '' };
  } catch (err) {
    assert.ok(isServiceError(err), `not a gRPC status: ${String(err)}`);
    return { code: grpc.status[err.code], details: err.details };
  }
}

/** The state letter of /proc/PID/stat ('T' when stopped). */
function procState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits, bounded, until `check` holds. */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/**
 * A process holding one TCP connection to `port` on loopback as fd 3, run through `setpriv` with these
 * uids (`bash -p` keeps an effective uid that differs from the real one; sleep does not care).
 */
async function connectedProcess(port: number, setpriv: string[]): Promise<ChildProcess> {
  const child = spawn('setpriv', [...setpriv, 'bash', '-p', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port} && echo connected && exec sleep 600`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await until(() => out.includes('connected') || child.exitCode !== null, 'the connected process');
  assert.ok(out.includes('connected'), `setpriv ${setpriv.join(' ')}: ${out}`);
  const pid = child.pid as number;
  await until(() => readFileSync(`/proc/${pid}/comm`, 'latin1').trim() === 'sleep', 'exec sleep');
  return child;
}

function uidsOf(pid: number): number[] {
  const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  assert.ok(m);
  return m.slice(1).map(Number);
}

/** The TCP address a daemon bound (from daemon.json, written once every listener is bound). */
async function boundTcp(d: DaemonProcess): Promise<string> {
  const file = join(d.dir, 'state', 'daemon.json');
  let tcp: string | undefined;
  await until(() => {
    try {
      tcp = (JSON.parse(readFileSync(file, 'utf8')) as { bound?: string[] }).bound?.find((a) => !a.startsWith('unix:'));
    } catch {
      tcp = undefined;
    }
    return tcp !== undefined;
  }, 'daemon.json with a TCP address');
  return tcp as string;
}

async function expectRefusedAtStart(args: string[], message: RegExp): Promise<void> {
  await assert.rejects(DaemonProcess.start(args), (err: Error) => {
    assert.match(err.message, /exited at start/);
    assert.match(err.message, message);
    return true;
  });
}

describe('hardening', function () {
  this.timeout(120_000);
  let tmp: string;

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'soccrt-hard-'));
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs()}\n`);
    await cleanupDaemons();
  });

  after(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('--state-dir', function () {
    it('refuses a directory owned by another user, writable by group or others, or under a directory another user owns', async () => {
      const byNobody = join(tmp, 'by-nobody');
      mkdirSync(byNobody, { mode: 0o700 });
      chownSync(byNobody, NOBODY, NOBODY);
      await expectRefusedAtStart(['--state-dir', byNobody], /--state-dir .*by-nobody is owned by uid 65534.*chown root/);

      const groupWritable = join(tmp, 'group-writable');
      mkdirSync(groupWritable);
      chmodSync(groupWritable, 0o770);
      await expectRefusedAtStart(['--state-dir', groupWritable], /--state-dir .*group-writable is writable by its group \(mode 770\).*chmod go-w/);

      const worldWritable = join(tmp, 'world-writable');
      mkdirSync(worldWritable);
      chmodSync(worldWritable, 0o703);
      await expectRefusedAtStart(['--state-dir', worldWritable], /is writable by others \(mode 703\)/);

      // Root's own directory, but in one that uid 65534 owns: that user could rename it away and put
      // its own in its place.
      const inside = join(byNobody, 'state');
      mkdirSync(inside, { mode: 0o700 });
      await expectRefusedAtStart(['--state-dir', inside], /--state-dir .*by-nobody\/state: its parent .*by-nobody is owned by uid 65534/);

      // Refused before anything was written there.
      for (const dir of [byNobody, groupWritable, worldWritable, inside]) assert.throws(() => readFileSync(join(dir, JOURNAL_FILE)), /ENOENT/);
    });

    it('does not follow a symbolic link planted for its journal or its instance id', async () => {
      const victim = join(tmp, 'victim');
      writeFileSync(victim, 'precious\n');
      for (const name of [JOURNAL_FILE, 'journal.owner', 'instance-id']) {
        const dir = join(tmp, `link-${name}`);
        mkdirSync(dir, { mode: 0o700 });
        symlinkSync(victim, join(dir, name));
        await expectRefusedAtStart(['--state-dir', dir], new RegExp(`${name.replace('.', '\\.')} is a symbolic link`));
        assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
      }
    });

    it('starts on a root-owned 0700 directory under a sticky /tmp', async () => {
      const dir = join(tmp, 'good');
      mkdirSync(dir, { mode: 0o700 });
      const d = await DaemonProcess.start(['--state-dir', dir]);
      assert.match(readFileSync(join(dir, 'daemon.json'), 'utf8'), new RegExp(`"pid":${d.pid}`));
    });
  });

  describe('checkpoint targets, confirmed against the pidfd', function () {
    let server: Server;
    let port: number;
    const accepted: Socket[] = [];
    const children: ChildProcess[] = [];

    before(async () => {
      server = createServer((s) => accepted.push(s));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    afterEach(() => {
      for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
    after(() => {
      for (const s of accepted) s.destroy();
      server.close();
    });

    it('--checkpoint-uid must allow every uid a process holds: real, effective and saved (setuid-style processes)', async function () {
      const d = await DaemonProcess.start(['--checkpoint-uid', String(NOBODY)]);
      const client = new SoccrClient(d.address);
      try {
        const cases: Array<{ setpriv: string[]; uids: number[]; code: string; details?: RegExp }> = [
          // real uid allowed, effective root: a setuid-root program run by the allowed user
          { setpriv: ['--ruid', String(NOBODY)], uids: [NOBODY, 0, 0, 0], code: 'PERMISSION_DENIED', details: /uid 0 .*effective uid 0.*not allowed/ },
          // effective uid allowed, real root (it can become root again)
          { setpriv: ['--euid', String(NOBODY)], uids: [0, NOBODY, NOBODY, NOBODY], code: 'PERMISSION_DENIED', details: /uid 0 .*real uid 0 not allowed/ },
          // every uid the allowed one
          { setpriv: ['--reuid', String(NOBODY)], uids: [NOBODY, NOBODY, NOBODY, NOBODY], code: 'OK' },
        ];
        for (const c of cases) {
          const child = await connectedProcess(port, c.setpriv);
          children.push(child);
          const pid = child.pid as number;
          assert.deepEqual(uidsOf(pid), c.uids, `setpriv ${c.setpriv.join(' ')}`);
          const file = join(tmp, `uid-${pid}.soccr`);
          const r = await outcome(client.checkpointToFile(pid, { all: true, stopOwner: true }, file));
          assert.equal(r.code, c.code, `${c.setpriv.join(' ')}: ${r.details}`);
          if (c.details) {
            assert.match(r.details, c.details);
            // Refused: no session, the owner not stopped, its connection not frozen (still listed).
            assert.deepEqual(await client.listSessions(), []);
            assert.notEqual(procState(pid), 'T');
            // (ListSockets is refused too, under the same policy: ss says the connection is still established.)
            const inode = /socket:\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/fd/3`))?.[1];
            assert.ok(inode);
            const established = spawnSync('ss', ['-tnHe', 'state', 'established'], { encoding: 'utf8' }).stdout;
            assert.ok(
              established.split('\n').some((l) => l.includes(` ino:${inode} `)),
              `socket ${inode} is established: ${established}`,
            );
            assert.ok(!existsSync(file));
          } else {
            const [s] = await client.listSessions();
            await client.resume(s.sessionId);
            await until(() => procState(pid) !== 'T', 'the owner continued');
          }
        }
      } finally {
        client.close();
      }
    });

    it('a non-root caller (uid 65534, the default policy: its own processes) is refused a process whose effective or saved uid is root', async function () {
      const caller = OtherUserCopy.of(NOBODY, NOBODY).program(this, 'test/fixtures/rpc-caller.js');
      // A program that connects, then gives up root for uid 65534 except its saved uid (no exec after:
      // an exec would copy the effective uid into the saved one), as a daemon dropping privileges may.
      const src = join(tmp, 'saved-root.c');
      const bin = join(tmp, 'saved-root');
      writeFileSync(
        src,
        [
          '#define _GNU_SOURCE',
          '#include <arpa/inet.h>',
          '#include <stdio.h>',
          '#include <stdlib.h>',
          '#include <sys/socket.h>',
          '#include <unistd.h>',
          'int main(int argc, char **argv) {',
          '  int s = socket(AF_INET, SOCK_STREAM, 0);',
          '  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };',
          '  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);',
          '  if (connect(s, (struct sockaddr *)&a, sizeof a) || setresuid(65534, 65534, 0)) { perror("saved-root"); return 1; }',
          '  printf("connected\\n"); fflush(stdout);',
          '  pause();',
          '  return 0;',
          '}',
        ].join('\n'),
      );
      const cc = spawnSync('gcc', ['-O2', '-o', bin, src], { encoding: 'utf8' });
      assert.equal(cc.status, 0, cc.stderr);
      chmodSync(tmp, 0o711); // traversable by uid 65534, to its own directory
      const files = join(tmp, 'nobody-files');
      mkdirSync(files, { mode: 0o777 });
      chmodSync(files, 0o777);
      const config = join(tmp, 'open-socket.json');
      writeFileSync(config, JSON.stringify({ socketMode: 0o666 }));
      const d = await DaemonProcess.start(['--config', config, '--allow-uid', String(NOBODY)]);
      chmodSync(d.dir, 0o711);
      const call = (ops: unknown[]): Promise<Array<{ op: string; code: string; details?: string }>> =>
        new Promise((resolveCall, reject) => {
          execFile(
            process.execPath,
            [caller, d.address, JSON.stringify(ops)],
            { uid: NOBODY, gid: NOBODY, cwd: '/', timeout: 60_000 },
            (err, stdout, stderr) => {
              if (err) reject(new Error(`${err.message}\n${stderr}`));
              else
                resolveCall(
                  stdout
                    .trim()
                    .split('\n')
                    .map((l) => JSON.parse(l) as { op: string; code: string; details?: string }),
                );
            },
          );
        });
      const started = async (cmd: string, args: string[]): Promise<ChildProcess> => {
        const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        let out = '';
        child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
        child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
        await until(() => out.includes('connected') || child.exitCode !== null, 'connected');
        assert.ok(out.includes('connected'), out);
        return child;
      };
      const savedRoot = await started(bin, [String(port)]);
      const setuidRoot = await connectedProcess(port, ['--ruid', String(NOBODY)]);
      const own = await connectedProcess(port, ['--reuid', String(NOBODY)]);
      children.push(setuidRoot, own);
      assert.deepEqual(uidsOf(savedRoot.pid as number), [NOBODY, NOBODY, 0, NOBODY]);
      for (const [child, which] of [
        [savedRoot, /uid 0 \(saved uid 0 not allowed\)/],
        [setuidRoot, /uid 0 \(effective uid 0, saved uid 0, filesystem uid 0 not allowed\)/],
      ] as const) {
        const pid = child.pid as number;
        const [ck] = await call([{ op: 'checkpoint', pid, file: join(files, `refused-${pid}.soccr`) }]);
        assert.equal(ck.code, 'PERMISSION_DENIED', ck.details);
        assert.match(ck.details ?? '', which);
        assert.notEqual(procState(pid), 'T');
      }
      const root = new SoccrClient(d.address);
      try {
        assert.deepEqual(await root.listSessions(), [], 'nothing was frozen');
      } finally {
        root.close();
      }
      // Its own process, every uid its own: checkpointed and resumed.
      const [ck, resumed] = await call([
        { op: 'checkpoint', pid: own.pid, file: join(files, 'own.soccr') },
        { op: 'resume', id: '$last' },
      ]);
      assert.equal(ck.code, 'OK', ck.details);
      assert.equal(resumed.code, 'OK', resumed.details);
    });

    it('facts are read after pidfd_open and proven by the pidfd: an exited process is NO_SUCH_PROCESS, also once its pid names another process', async function () {
      const child = spawn('sleep', ['600'], { stdio: 'ignore' });
      children.push(child);
      const pid = child.pid as number;
      const h = ProcessHandle.open(pid);
      try {
        const facts = h.facts();
        assert.equal(facts.pid, pid);
        assert.equal(facts.self, false);
        assert.equal(facts.soccrd, false);
        child.kill('SIGKILL');
        await until(() => !existsSync(`/proc/${pid}`), 'the child reaped');
        const gone = (err: unknown): boolean => {
          assert.ok(err instanceof SoccrError);
          assert.equal(err.kind, 'NO_SUCH_PROCESS');
          return true;
        };
        assert.throws(() => h.facts(), gone);
        assert.throws(() => h.confirm(), gone);
        // The pid given to another process (the kernel's next pid set just below it, bounded tries:
        // other processes of the machine may take it first). /proc/PID then shows the newcomer, and the
        // pidfd still says that its own process has exited.
        let reused: ChildProcess | undefined;
        for (let i = 0; i < 50 && !reused; i++) {
          writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
          const c = spawn('sleep', ['600'], { stdio: 'ignore' });
          children.push(c);
          if (c.pid === pid) reused = c;
          else c.kill('SIGKILL');
        }
        if (!reused) {
          process.stdout.write(`      (pid ${pid} was not handed out again in 50 tries: the reuse half is not shown this run)\n`);
          return;
        }
        assert.ok(existsSync(`/proc/${pid}/status`), 'the pid names a live process again');
        assert.throws(() => h.facts(), gone);
      } finally {
        h.close();
      }
    });
  });

  describe('no daemon checkpoints itself or another soccrd', function () {
    it('refuses its own pid (also with stopOwner, and for Handoff) and a second daemon in the same namespace, and keeps serving', async function () {
      const a = await DaemonProcess.start(['--listen', '127.0.0.1:0', '--insecure']);
      const b = await DaemonProcess.start(['--listen', '127.0.0.1:0', '--insecure']);
      // Each daemon holds an established TCP connection: a client's, over its TCP listener.
      const overTcp = [new SoccrClient(await boundTcp(a)), new SoccrClient(await boundTcp(b))];
      const client = new SoccrClient(a.address);
      try {
        for (const c of overTcp) await c.getVersion();
        for (const [target, what] of [
          [a.pid, /is this soccrd daemon/],
          [b.pid, /is another soccrd daemon/],
        ] as const) {
          assert.ok(
            (await client.listSockets(target)).some((s) => s.remote?.port),
            `pid ${target} holds a TCP connection`,
          );
          for (const stopOwner of [false, true]) {
            const r = await outcome(client.checkpointToFile(target, { all: true, stopOwner }, join(tmp, `daemon-${target}.soccr`)));
            assert.equal(r.code, 'PERMISSION_DENIED', r.details);
            assert.match(r.details, what);
            assert.notEqual(procState(target), 'T');
          }
        }
        // Nor hand off (issue 13's Handoff stops the owner first: it would stop itself).
        for (const [target, what] of [
          [a.pid, /is this soccrd daemon/],
          [b.pid, /is another soccrd daemon/],
        ] as const) {
          const r = await outcome(client.handoff(target, join(tmp, 'never.sock'), { all: true, listeners: true }));
          assert.equal(r.code, 'PERMISSION_DENIED', r.details);
          assert.match(r.details, what);
          assert.notEqual(procState(target), 'T');
        }
        // Nothing changed: no session, both daemons serve, also over the connections that were named.
        assert.deepEqual(await client.listSessions(), []);
        for (const c of overTcp) await c.getVersion();
        assert.ok((await new SoccrClient(b.address).getVersion()).version);
      } finally {
        for (const c of overTcp) c.close();
        client.close();
      }
    });
  });

  describe('half-closed restores inject only to a local address', function () {
    afterEach(async () => {
      await killAllEndpoints();
      destroyTopologies();
    });
    after(() => assert.deepEqual(leftoverNamespaces(), []));

    /** Packets leaving namespace `ns` on a link (not loopback) with the peer's address as source, counted by an nftables rule there. */
    const spoofCounter = (ns: string): (() => number) => {
      const nft = (cmd: string): string => run('ip', ['netns', 'exec', ns, 'nft', cmd]);
      nft('add table inet soccrt_spoof');
      nft('add chain inet soccrt_spoof post { type filter hook postrouting priority 0; }');
      nft(`add rule inet soccrt_spoof post oifname != "lo" ip saddr ${PEER_V4} counter`);
      return () => Number(/packets (\d+)/.exec(run('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'soccrt_spoof']))?.[1] ?? NaN);
    };

    it('through a daemon: a transparent Restore of a CLOSE_WAIT connection is held where its address is, FAILED_PRECONDITION where it is not, with nothing held, built or sent', async () => {
      const p = await connectPair('ipv4', 2);
      await setUp(p, TcpState.CLOSE_WAIT);
      await p.owner.command('quiesce');
      const d = await DaemonProcess.start();
      const client = new SoccrClient(d.address);
      try {
        const file = join(tmp, 'close-wait.soccr');
        const ck = await client.checkpointToFile(p.owner.pid, { all: true }, file);
        assert.equal(ck.connections, 1);
        await client.resume(ck.header.sessionId);
        const host = p.topo.hosts[1];
        const netns = p.topo.nsPath(host);
        const sent = spoofCounter(host);

        const held = await client.restoreFromFile(file, { netns, transparent: true });
        assert.equal(held.state, SessionState.HELD);
        await client.abort(held.sessionId);

        run('ip', ['-n', host, 'addr', 'del', `${SERVICE_V4}/32`, 'dev', 'h1']);
        run('ip', ['-n', host, 'route', 'add', `${SERVICE_V4}/32`, 'dev', 'h1']);
        const r = await outcome(client.restoreFromFile(file, { netns, transparent: true }));
        assert.equal(r.code, 'FAILED_PRECONDITION', r.details);
        assert.match(
          r.details,
          /CLOSE_WAIT connection .* its local address 10\.77\.0\.1 is not an address of network namespace .*move the address there first/,
        );
        await sleep(200);
        assert.equal(sent(), 0, 'no segment with the peer as source left the namespace');
        assert.deepEqual(
          (await client.listSessions()).filter((s) => s.state === SessionState.HELD || s.state === SessionState.FROZEN),
          [],
          'nothing held',
        );
        assert.deepEqual(
          run('ip', ['netns', 'exec', host, 'ss', '-tanH'])
            .split('\n')
            .filter((l) => l.trim()),
          [],
          'no socket in the namespace',
        );
      } finally {
        client.close();
      }
    });

    for (const state of [TcpState.CLOSE_WAIT, TcpState.FIN_WAIT2]) {
      it(`${stateName(state)}: rebuilt (transparent) where its local address is the namespace's; refused, with nothing sent or built, where it is not`, async () => {
        const p = await connectPair('ipv4', 2);
        await setUp(p, state);
        await p.owner.command('quiesce');
        const h = ProcessHandle.open(p.owner.pid);
        const frozen = pause(h.takeTcpSocket(p.owner.connectedFd));
        h.close();
        try {
          const saved = save(frozen);
          assert.equal(stateName(saved.state), stateName(state));
          const host = p.topo.hosts[1];
          const netns = p.topo.nsPath(host);
          const sent = spoofCounter(host);

          // The local address is there: the injected segment (at go-live) is taken in locally, the state reached.
          const r = restore(saved, { netns, transparent: true });
          assert.deepEqual(finishRestoredAll([r]), [undefined], 'go-live steps');
          assert.equal(stateName(readTcpInfoHead(r.fd).state), stateName(state));
          silentClose(r);
          assert.equal(sent(), 0, 'nothing left the namespace');

          // The address is elsewhere on the link (as on a LAN before it moves): refused before anything is built.
          run('ip', ['-n', host, 'addr', 'del', `${SERVICE_V4}/32`, 'dev', 'h1']);
          run('ip', ['-n', host, 'route', 'add', `${SERVICE_V4}/32`, 'dev', 'h1']);
          assert.throws(
            () => restore(saved, { netns, transparent: true }),
            (err: unknown) => {
              assert.ok(err instanceof SoccrError, String(err));
              assert.equal(err.kind, 'TARGET_STATE');
              assert.match(
                err.message,
                new RegExp(`local address ${SERVICE_V4.replace(/\./g, '\\.')} is not an address of network namespace .*spoofed.*move the address there first`),
              );
              return true;
            },
          );
          await sleep(200);
          assert.equal(sent(), 0, 'no segment with the peer as source left the namespace');
          assert.deepEqual(
            run('ip', ['netns', 'exec', host, 'ss', '-tanH'])
              .split('\n')
              .filter((l) => l.trim()),
            [],
            'no socket was left in the namespace',
          );
        } finally {
          resume(frozen);
        }
      });
    }
  });

  describe('install-service', function () {
    const checkout = resolve(__dirname, '..', '..');

    /** Gives `path` and everything under it to uid:gid (links themselves, never their targets). */
    const chownTree = (path: string, uid: number): void => {
      lchownSync(path, uid, uid);
      for (const e of readdirSync(path, { withFileTypes: true })) {
        if (e.isDirectory()) chownTree(join(path, e.name), uid);
        else lchownSync(join(path, e.name), uid, uid);
      }
    };

    /** A checkout of its own: the built tree copied, the dependencies linked to this checkout's. */
    const copyCheckout = (at: string): string => {
      mkdirSync(at, { recursive: true, mode: 0o755 });
      for (const entry of ['dist', 'protos', 'systemd', 'package.json', 'build']) {
        if (existsSync(join(checkout, entry)))
          cpSync(join(checkout, entry), join(at, entry), { recursive: true, filter: (src) => !/\.(map|ts)$/.test(src) || src.endsWith('.d.ts') });
      }
      symlinkSync(join(checkout, 'node_modules'), join(at, 'node_modules'));
      return at;
    };

    const install = (co: string, unitDir: string): { status: number | null; out: string } => {
      const r = spawnSync(process.execPath, [join(co, 'dist', 'daemon', 'main.js'), 'install-service', '--unit-dir', unitDir], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };

    it('refuses a checkout that another user owns or can write, anywhere from / down to what the daemon loads; installs from a root-owned one', function () {
      const co = copyCheckout(join(tmp, 'co', 'soccrd'));
      chmodSync(join(tmp, 'co'), 0o755);
      const units = join(tmp, 'units');
      const refused = (what: RegExp): void => {
        const r = install(co, units);
        assert.equal(r.status, 1, r.out);
        assert.match(r.out, /refusing to point ExecStart at code that others than root can change/);
        assert.match(r.out, what);
        assert.match(r.out, /Install from a root-owned copy/);
        assert.ok(!existsSync(join(units, 'soccrd.service')), 'no unit written');
      };

      // A checkout owned by uid 65534, as a user's clone would be.
      chownTree(co, NOBODY);
      refused(new RegExp(`${co.replace(/[.]/g, '\\.')} is owned by uid ${NOBODY}`));
      chownTree(co, 0);

      // One file deep inside, writable by its group.
      const deep = join(co, 'dist', 'protocol', 'errors.js');
      chmodSync(deep, 0o664);
      refused(new RegExp(`${deep.replace(/[.]/g, '\\.')} is writable by its group`));
      chmodSync(deep, 0o644);

      // A directory above the checkout that uid 65534 owns: it could swap the checkout for its own.
      chownSync(join(tmp, 'co'), NOBODY, NOBODY);
      refused(/co is owned by uid 65534/);
      chownSync(join(tmp, 'co'), 0, 0);

      // Root's alone: installed, ExecStart on this copy.
      const r = install(co, units);
      assert.equal(r.status, 0, r.out);
      const execStart = /^ExecStart=(.*)$/m.exec(readFileSync(join(units, 'soccrd.service'), 'utf8'))?.[1];
      assert.ok(execStart?.includes(join(co, 'dist', 'daemon', 'main.js')), execStart);
    });
  });
});
