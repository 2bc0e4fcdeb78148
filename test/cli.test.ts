// soccrctl and the client library without a real daemon: `show` on checkpoint files built here, usage
// errors, an address where nothing listens, and a stand-in SocketRepairService server (test/support/standin.ts:
// in this process, on a Unix socket in the temp directory) that the CLI, run as a child process,
// checkpoints from and restores to. Pure user space: needs no privileges.
import { strict as assert } from 'node:assert';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SoccrClient, describeError, readCheckpointFile } from '../client';
import * as grpc from '@grpc/grpc-js';
import { jsonText, terminalSafe } from '../client/cli/output';
import type { ErrorReport } from '../client/cli/failure';
import { buildProgram } from '../client/soccrctl';
import { SessionHeaderMsg } from '../protocol/messages';
import { frameKind } from '../protocol/frames';
import { sessionFrames } from '../protocol/session-frames';
import { TcpState } from '../protocol/saved-state';
import { savedConnection } from './support/states';
import { CheckpointRequestPlain, MiB, StandInDaemon, header, sha, withQueues, writeCheckpoint } from './support/standin';

const CLI = path.resolve(__dirname, '..', 'client', 'soccrctl.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs soccrctl as a child process, asynchronously (the stand-in server answers from this process). */
function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, SOCCRD_ADDRESS: '', ...env }, maxBuffer: 64 * MiB, timeout: 30000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

// ---- tests ----------------------------------------------------------------------------------------

describe('terminalSafe and jsonText (soccrctl output)', function () {
  it('escapes C0 (but tab and newline), DEL, C1 and bidi controls; leaves other text alone', function () {
    assert.equal(terminalSafe('a\tb\nc'), 'a\tb\nc');
    assert.equal(terminalSafe('\x1b[2J\r\x7f\u0085\u009b\u202e\u2066'), '\\x1b[2J\\x0d\\x7f\\x85\\x9b\\u202e\\u2066');
    assert.equal(terminalSafe('héllo │ 10.1.2.3:80 ✓'), 'héllo │ 10.1.2.3:80 ✓');
  });
  it('keeps JSON valid and its values exact', function () {
    const doc = { s: '\x1b]0;t\x07\u009b\u202e\x7f', n: 1 };
    const text = jsonText(doc);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    assert.deepEqual(JSON.parse(text), doc);
  });
});

describe('soccrctl', function () {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'soccrctl-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('show (offline)', function () {
    const recv = Buffer.from('GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n');
    const send = randomBytes(3000);
    const big = randomBytes(MiB + 12345);
    let file: string;
    let bytes: Buffer;

    before(() => {
      file = path.join(dir, 'two.soccr');
      bytes = writeCheckpoint(file, header(2), [
        { id: '3:123456', fd: 3, state: withQueues(savedConnection(), recv, send, 1000) },
        {
          id: '7:654321',
          fd: 7,
          state: withQueues(
            savedConnection({
              state: TcpState.CLOSE_WAIT,
              socketFamily: 'ipv6',
              local: { family: 'ipv6', ip: '2001:db8::1', port: 8443 },
              remote: { family: 'ipv6', ip: '2001:db8::2', port: 50000 },
              window: undefined,
            }),
            big,
            Buffer.alloc(0),
          ),
        },
      ]);
    });

    it('prints the session and every connection in a table', async function () {
      const r = await run(['show', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      for (const s of [
        'src-0001',
        'pid 4242 on alpha',
        'verified',
        '3:123456',
        'ESTABLISHED',
        '10.1.2.3:43210',
        '192.168.200.7:443',
        String(recv.length),
        '3000 (1000)',
        sha(recv).slice(0, 16),
        sha(send).slice(0, 16),
        '7:654321',
        'CLOSE_WAIT',
        '[2001:db8::1]:8443',
        '[2001:db8::2]:50000',
        String(big.length),
      ]) {
        assert.ok(r.stdout.includes(s), `missing ${JSON.stringify(s)} in:\n${r.stdout}`);
      }
      assert.ok(!r.stdout.includes('MISMATCH'));
    });

    it('prints one JSON document with --json', async function () {
      const r = await run(['--json', 'show', file]);
      assert.equal(r.code, 0, r.stderr);
      const d = JSON.parse(r.stdout) as {
        verified: boolean;
        complete: boolean;
        error: string | null;
        session: SessionHeaderMsg;
        queueBytes: number;
        connections: Array<Record<string, unknown>>;
      };
      assert.equal(d.verified, true);
      assert.equal(d.complete, true);
      assert.equal(d.error, null);
      assert.equal(d.session.sessionId, 'src-0001');
      assert.equal(d.session.connectionCount, 2);
      assert.equal(d.queueBytes, recv.length + send.length + big.length);
      assert.equal(d.connections.length, 2);
      const [a, b] = d.connections;
      assert.deepEqual(
        {
          id: a.id,
          fd: a.fd,
          state: a.state,
          local: a.local,
          remote: a.remote,
          recv: a.recvQueueLen,
          send: a.sendQueueLen,
          unsent: a.unsentLen,
          verified: a.verified,
        },
        {
          id: '3:123456',
          fd: 3,
          state: 'ESTABLISHED',
          local: '10.1.2.3:43210',
          remote: '192.168.200.7:443',
          recv: recv.length,
          send: 3000,
          unsent: 1000,
          verified: true,
        },
      );
      assert.equal(a.recvSha256, sha(recv));
      assert.equal(a.sendSha256, sha(send));
      assert.equal(a.actualRecvSha256, sha(recv));
      assert.deepEqual((a.tcp as { window: unknown }).window, savedConnection().window);
      assert.equal((a.options as { congestion: string }).congestion, 'cubic');
      assert.equal(b.state, 'CLOSE_WAIT');
      assert.equal(b.local, '[2001:db8::1]:8443');
      assert.equal(b.recvSha256, sha(big));
      assert.equal(b.verified, true);
      assert.equal((b.tcp as { window: unknown }).window, null);
    });

    it('reports a flipped queue byte as a checksum mismatch (DATA_LOSS, exit 79)', async function () {
      const bad = Buffer.from(bytes);
      const at = bad.indexOf(send.subarray(0, 64));
      assert.ok(at > 0);
      bad[at + 10] ^= 0x01;
      const badFile = path.join(dir, 'flipped.soccr');
      writeFileSync(badFile, bad);

      const r = await run(['show', badFile]);
      assert.equal(r.code, 79);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^soccrctl: DATA_LOSS: connection 0 \(3:123456\): queue checksum mismatch/);
      assert.ok(r.stdout.includes('MISMATCH'), r.stdout);
      assert.ok(r.stdout.includes('NOT VERIFIED'), r.stdout);

      const j = await run(['show', '--json', badFile]);
      assert.equal(j.code, 79);
      assert.match(j.stderr, /DATA_LOSS/);
      const d = JSON.parse(j.stdout) as {
        verified: boolean;
        error: ErrorReport;
        connections: Array<{ verified: boolean; sendSha256: string; actualSendSha256: string }>;
      };
      assert.equal(d.verified, false);
      // the description, its error member the failure's report
      assert.deepEqual([d.error.exitCode, d.error.code, d.error.status, d.error.kind], [79, 15, 'DATA_LOSS', 'DATA_LOSS']);
      assert.match(d.error.message, /^DATA_LOSS: connection 0 /);
      // listing goes on past the damaged connection
      assert.deepEqual(
        d.connections.map((c) => c.verified),
        [false, true],
      );
      assert.equal(d.connections[0].sendSha256, sha(send));
      assert.notEqual(d.connections[0].actualSendSha256, sha(send));
    });

    it('refuses a truncated file and a file that is not a checkpoint', async function () {
      const cut = path.join(dir, 'cut.soccr');
      writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
      const r = await run(['show', cut]);
      assert.equal(r.code, 67, 'INVALID_ARGUMENT');
      assert.match(r.stderr, /^soccrctl: INVALID_STATE: .*truncated/);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1);

      const junk = path.join(dir, 'junk');
      writeFileSync(junk, 'hello world, not a checkpoint');
      const j = await run(['show', junk]);
      assert.equal(j.code, 67, 'INVALID_ARGUMENT');
      assert.match(j.stderr, /^soccrctl: INVALID_STATE: .*bad magic/);

      const missing = await run(['show', path.join(dir, 'nope')]);
      assert.equal(missing.code, 1, 'a local file: no gRPC status');
      assert.match(missing.stderr, /^soccrctl: ENOENT/);
      const missingJson = await run(['--json', 'show', path.join(dir, 'nope')]);
      assert.equal(missingJson.code, 1);
      assert.deepEqual(JSON.parse(missingJson.stdout), {
        error: { exitCode: 1, code: null, status: null, kind: null, errno: 'ENOENT', message: missing.stderr.trim().replace(/^soccrctl: /, '') },
      });
    });

    it('reads a checkpoint file frame by frame', async function () {
      const kinds: string[] = [];
      for await (const f of readCheckpointFile(file)) kinds.push(frameKind(f));
      // header, 2 x (connection, chunks..., end), stream end; the big queue takes two chunks
      assert.deepEqual(kinds, ['session', 'connection', 'chunk', 'chunk', 'end', 'connection', 'chunk', 'chunk', 'end', 'streamEnd']);
    });
  });

  describe('usage', function () {
    it('--help lists the commands', async function () {
      const r = await run(['--help']);
      assert.equal(r.code, 0);
      for (const c of [
        'version',
        'sockets',
        'checkpoint',
        'restore',
        'resume',
        'release',
        'abort',
        'renew',
        'sessions',
        'session',
        'show',
        '--daemon',
        '--json',
        '--timeout',
      ]) {
        assert.ok(r.stdout.includes(c), `--help lacks ${c}`);
      }
      // the exit codes, documented where the user looks
      assert.match(r.stdout, /Exit codes/);
      assert.match(r.stdout, /\n\s+2\s+usage/);
      assert.match(r.stdout, /\n\s+69\s+gRPC status NOT_FOUND\n/);
      assert.match(r.stdout, /\n\s+78\s+gRPC status UNAVAILABLE\n/);
      const sub = await run(['restore', '--help']);
      assert.equal(sub.code, 0);
      assert.match(sub.stdout, /--deliver/);
      assert.match(sub.stdout, /--hold/);
    });

    it('rejects bad arguments with one line and exit 2, before calling the daemon; --json: an error document', async function () {
      for (const args of [
        ['restore', '--in', 'x.soccr'],
        ['checkpoint', '--pid', '1', '--out', 'x'],
        ['checkpoint', '--pid', 'abc', '--all', '--out', 'x'],
        ['restore', '--in', 'x', '--deliver', 'tcp:1.2.3.4'],
        ['frobnicate'],
      ]) {
        const r = await run(['--daemon', 'unix:///nonexistent/soccrd.sock', ...args]);
        assert.equal(r.code, 2, args.join(' '));
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /^soccrctl: /);
        assert.doesNotMatch(r.stderr, /UNAVAILABLE/);
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
        const j = await run(['--daemon', 'unix:///nonexistent/soccrd.sock', '--json', ...args]);
        assert.equal(j.code, 2, args.join(' '));
        const doc = JSON.parse(j.stdout) as { error: ErrorReport };
        assert.deepEqual(doc, {
          error: { exitCode: 2, code: null, status: null, kind: 'USAGE', errno: null, message: r.stderr.trim().replace(/^soccrctl: /, '') },
        });
      }
      const none = await run([]);
      assert.equal(none.code, 2, 'no command: usage');
      assert.match(none.stderr, /Usage: soccrctl/);
    });
  });

  describe('completion', function () {
    /** What bash completes for `words` (the last one being completed) with the script soccrctl printed. */
    function bashComplete(script: string, words: string[]): string[] {
      const file = path.join(dir, 'completion.bash');
      writeFileSync(file, script);
      const words_ = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
      const out = execFileSync(
        'bash',
        ['-c', `source ${JSON.stringify(file)}; COMP_WORDS=(${words_}); COMP_CWORD=${words.length - 1}; _soccrctl; printf '%s\\n' "\${COMPREPLY[@]}"`],
        { encoding: 'utf8', timeout: 10_000 },
      );
      return out.split('\n').filter((l) => l !== '');
    }

    it('bash: completes commands, options, option values and arguments from the program itself', async function () {
      const r = await run(['completion', 'bash']);
      assert.equal(r.code, 0, r.stderr);
      const script = r.stdout;
      assert.match(script, /complete -F _soccrctl soccrctl/);
      assert.deepEqual(bashComplete(script, ['soccrctl', 'che']), ['checkpoint']);
      assert.deepEqual(bashComplete(script, ['soccrctl', '--json', 'ses']).sort(), ['session', 'sessions']);
      // an option's value is not the command
      assert.deepEqual(bashComplete(script, ['soccrctl', '--daemon', 'unix:///x.sock', 'res']).sort(), ['restore', 'resume']);
      assert.deepEqual(bashComplete(script, ['soccrctl', 'checkpoint', '--p']), ['--pid']);
      assert.deepEqual(bashComplete(script, ['soccrctl', 'migrate', '--no-s']), ['--no-stop-owner']);
      assert.deepEqual(bashComplete(script, ['soccrctl', 'completion', '']), ['bash', 'zsh']);
      assert.deepEqual(bashComplete(script, ['soccrctl', '--pid', '']), [], 'a free value: no suggestion');
      // file arguments and file-valued options complete file names
      writeFileSync(path.join(dir, 'conn-one.soccr'), '');
      assert.deepEqual(bashComplete(script, ['soccrctl', 'show', path.join(dir, 'conn-o')]), [path.join(dir, 'conn-one.soccr')]);
      assert.deepEqual(bashComplete(script, ['soccrctl', 'restore', '--in', path.join(dir, 'conn-o')]), [path.join(dir, 'conn-one.soccr')]);
      // every command the program has, and nothing else (the script cannot drift from the program)
      const program = buildProgram();
      assert.deepEqual(bashComplete(script, ['soccrctl', '']).sort(), [...program.commands.map((c) => c.name()), 'help'].sort());
      for (const c of program.commands) {
        const longs = c.options.flatMap((o) => (o.long ? [o.long] : []));
        const offered = bashComplete(script, ['soccrctl', c.name(), '--']);
        for (const l of [...longs, '--daemon', '--json', '--help']) assert.ok(offered.includes(l), `${c.name()}: ${l} not offered`);
      }
      const bad = await run(['completion', 'fish']);
      assert.equal(bad.code, 2);
    });

    it('zsh: a script that names every command and option, that zsh loads and completes with', async function () {
      const r = await run(['completion', 'zsh']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^#compdef soccrctl\n/);
      const program = buildProgram();
      for (const c of program.commands) {
        assert.ok(r.stdout.includes(`'${c.name()}:`), `zsh: command ${c.name()}`);
        for (const o of c.options) if (o.long) assert.ok(r.stdout.includes(o.long), `zsh: ${c.name()} ${o.long}`);
      }
      const zsh = spawnSync('zsh', ['--version'], { encoding: 'utf8' });
      if (zsh.status !== 0) {
        console.log('      (zsh is not installed: its parse of the script is not checked; npm test installs it)');
        return;
      }
      const file = path.join(dir, '_soccrctl');
      writeFileSync(file, r.stdout);
      const parsed = spawnSync('zsh', ['-n', file], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(parsed.status, 0, parsed.stderr);
      // loaded by compinit the way a user's fpath would: the function is defined and registered
      const loaded = spawnSync(
        'zsh',
        ['-f', '-c', `autoload -U compinit && compinit -u -D && source ${JSON.stringify(file)} && print -r -- \${_comps[soccrctl]}`],
        { encoding: 'utf8', timeout: 10_000 },
      );
      assert.equal(loaded.status, 0, loaded.stderr);
      assert.equal(loaded.stdout.trim(), '_soccrctl');
      // and it completes: an interactive zsh on a pseudo-terminal (zsh/zpty), a line typed and TAB pressed
      const typed = (line: string, expect: string): string => {
        const driver = [
          'zmodload zsh/zpty',
          "zpty z 'zsh -f -i'",
          `zpty -w z 'PS1="> "; autoload -U compinit; compinit -u -D; source ${file}'`,
          `zpty -w -n z $'${line}\\t'`,
          'out=""',
          `for (( i = 0; i < 50; i++ )); do sleep 0.1; while zpty -r -t z chunk; do out+=$chunk; done; [[ $out == *${expect}* ]] && break; done`,
          'zpty -d z',
          'print -r -- "$out"',
        ].join('\n');
        const z = spawnSync('zsh', ['-f', '-c', driver], { encoding: 'utf8', timeout: 20_000 });
        assert.equal(z.status, 0, z.stderr);
        // the last line the terminal showed, without its escape sequences
        return (
          z.stdout
            // eslint-disable-next-line no-control-regex
            .replace(/\x1b\[[0-9;?]*[A-Za-z]|[\b\r\x07]/g, '')
            .split('\n')
            .filter((l) => l.includes(line.split(' ')[0]))
            .at(-1) ?? ''
        );
      };
      assert.match(typed('soccrctl che', 'checkpoint'), /soccrctl checkpoint\s*$/);
      assert.match(typed('soccrctl checkpoint --pi', '--pid'), /soccrctl checkpoint --pid\s*$/);
      assert.match(typed('soccrctl completion b', 'bash'), /soccrctl completion bash\s*$/);
    });
  });

  describe('a daemon address where nothing listens', function () {
    it('fails fast with exit 78 (UNAVAILABLE) and one line; --json: the error document', async function () {
      const sock = path.join(os.tmpdir(), `soccrctl-nothing-${process.pid}-${Date.now()}.sock`);
      assert.ok(!existsSync(sock));
      for (const args of [['version'], ['sessions', '--json'], ['checkpoint', '--pid', '1', '--all', '--out', path.join(dir, 'never.soccr')]]) {
        const r = await run(['--daemon', `unix://${sock}`, '--timeout', '30000', ...args]);
        assert.equal(r.code, 78, args.join(' '));
        // version still says which client this is, and that the daemon is unreachable
        if (args[0] === 'version') assert.match(r.stdout, /soccrctl\s+\d+\.\d+\.\d+[\s\S]*soccrd\s+unreachable/);
        else if (!args.includes('--json')) assert.equal(r.stdout, '');
        if (args[0] === 'version') assert.match(r.stderr, /the daemon at unix:\/\/.* is unreachable \(is soccrd running\?\)/);
        assert.match(r.stderr, /^soccrctl: UNAVAILABLE: /);
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
        // fast: well inside the 30 s deadline (node's own start takes seconds on a loaded machine)
        assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
        const j = await run(['--daemon', `unix://${sock}`, '--timeout', '30000', '--json', ...args]);
        assert.equal(j.code, 78, args.join(' '));
        const doc = JSON.parse(j.stdout) as { client?: string; daemon?: null; error: ErrorReport };
        assert.deepEqual([doc.error.exitCode, doc.error.code, doc.error.status, doc.error.kind], [78, 14, 'UNAVAILABLE', null]);
        assert.match(doc.error.message, /^UNAVAILABLE: /);
        // version's document still says which client this is
        if (args[0] === 'version') assert.deepEqual([typeof doc.client, doc.daemon], ['string', null]);
        else assert.deepEqual(Object.keys(doc), ['error']);
      }
      // no partial checkpoint file is left behind
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.includes('never')),
        [],
      );
    });

    it('reports UNAVAILABLE through describeError from the library too', async function () {
      const client = new SoccrClient(`unix://${path.join(os.tmpdir(), `soccrctl-nothing-${process.pid}.sock`)}`, { timeoutMs: 2000 });
      try {
        await assert.rejects(client.listSessions(), (err: unknown) => {
          assert.match(describeError(err), /^UNAVAILABLE: /);
          return true;
        });
      } finally {
        client.close();
      }
    });
  });

  describe('against a stand-in daemon', function () {
    let fake: StandInDaemon;
    const q = { a: randomBytes(5000), b: randomBytes(3 * MiB + 7), c: randomBytes(17 * MiB) };

    before(async () => {
      fake = new StandInDaemon(path.join(dir, 'fake.sock'));
      await fake.start();
      fake.checkpointConns = [
        { id: '3:1', fd: 3, state: withQueues(savedConnection(), q.a, q.b, 100) },
        { id: '5:2', fd: 5, state: withQueues(savedConnection({ local: { family: 'ipv4', ip: '10.1.2.3', port: 43211 } }), Buffer.alloc(0), q.c) },
      ];
    });
    after(async () => {
      await fake.stop();
    });

    it('version', async function () {
      const r = await run(['--daemon', fake.address, 'version']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /soccrd\s+9\.9\.9-fake/);
      assert.match(r.stdout, /tcp_repair\s*│\s*yes/);
      const j = await run(['--daemon', fake.address, '--json', 'version']);
      const d = JSON.parse(j.stdout) as { daemon: string; features: { tcpRepair: boolean; bufLock: boolean } };
      assert.equal(d.daemon, '9.9.9-fake');
      assert.equal(d.features.tcpRepair, true);
      assert.equal(d.features.bufLock, false);
    });

    it('sockets, and an error with its soccr-errno', async function () {
      const r = await run(['--daemon', fake.address, 'sockets', '--pid', '42']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /10\.1\.2\.3:80/);
      assert.match(r.stdout, /LISTEN/);
      const j = await run(['--daemon', fake.address, '--json', 'sockets', '--pid', '42']);
      const d = JSON.parse(j.stdout) as { sockets: Array<{ fd: number; state: string; family: string; local: { ip: string } }> };
      assert.deepEqual(
        d.sockets.map((s) => [s.fd, s.state, s.family, s.local.ip]),
        [
          [3, 'ESTABLISHED', 'ipv4', '10.1.2.3'],
          [4, 'LISTEN', 'ipv6', '::'],
        ],
      );
      const e = await run(['--daemon', fake.address, 'sockets', '--pid', '999']);
      assert.equal(e.code, 69, 'NOT_FOUND');
      assert.equal(e.stderr, 'soccrctl: NOT_FOUND: no process with pid 999 (errno ESRCH)\n');
      const ej = await run(['--daemon', fake.address, '--json', 'sockets', '--pid', '999']);
      assert.equal(ej.code, 69);
      assert.equal(ej.stderr, e.stderr, 'the same line on stderr');
      assert.deepEqual(JSON.parse(ej.stdout), {
        error: {
          exitCode: 69,
          code: grpc.status.NOT_FOUND,
          status: 'NOT_FOUND',
          kind: 'NO_SUCH_PROCESS',
          errno: 'ESRCH',
          message: 'NOT_FOUND: no process with pid 999 (errno ESRCH)',
        },
      });
    });

    it('checkpoint to a file, show it, restore it held, resume it', async function () {
      const out = path.join(dir, 'cp.soccr');
      const c = await run(['--daemon', fake.address, 'checkpoint', '--pid', '77', '--all', '--out', out]);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(c.stdout, 'src-77\n');
      assert.match(c.stderr, /checkpointed 2 connection\(s\) of pid 4242/);

      const shown = await run(['--json', 'show', out]);
      assert.equal(shown.code, 0, shown.stderr);
      const d = JSON.parse(shown.stdout) as { verified: boolean; connections: Array<{ recvSha256: string; sendSha256: string }> };
      assert.equal(d.verified, true);
      assert.equal(d.connections[0].recvSha256, sha(q.a));
      assert.equal(d.connections[1].sendSha256, sha(q.c));

      const r = await run(['--daemon', fake.address, 'restore', '--in', out, '--hold', '--netns', 'blue', '--deliver', 'unix:/run/app.sock']);
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.trim();
      assert.match(id, /^rst-\d+$/);
      const got = fake.restored;
      assert.ok(got);
      assert.deepEqual(got.options, {
        netns: '/run/netns/blue',
        deliverUnixPath: '/run/app.sock',
        goLive: false,
        transparent: false,
        leaseMs: 0,
        noNetworkLock: false,
        dataTransfer: null,
      });
      assert.equal(got.header.sessionId, 'src-77');
      assert.equal(got.connections.length, 2);
      assert.ok(got.connections[0].state.recvQueue.equals(q.a));
      assert.ok(got.connections[0].state.sendQueue.equals(q.b));
      assert.ok(got.connections[1].state.sendQueue.equals(q.c));

      const s = await run(['--daemon', fake.address, 'session', id]);
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stdout, /state\s+HELD/);
      assert.match(s.stdout, /10\.1\.2\.3:43211/);

      const res = await run(['--daemon', fake.address, '--json', 'resume', id, '--deliver', 'unix:///run/other.sock']);
      assert.equal(res.code, 0, res.stderr);
      const rs = JSON.parse(res.stdout) as { state: string; kind: string; deliverUnixPath: string };
      assert.deepEqual([rs.state, rs.kind, rs.deliverUnixPath], ['RESUMED', 'RESTORE', '/run/other.sock']);

      const rel = await run(['--daemon', fake.address, 'release', 'src-77']);
      assert.equal(rel.code, 0, rel.stderr);
      assert.match(rel.stdout, /^session src-77: RELEASED/);

      const list = await run(['--daemon', fake.address, 'sessions']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /src-77.*SOURCE.*RELEASED/);
      assert.match(list.stdout, new RegExp(`${id}.*RESTORE.*RESUMED`));

      const missing = await run(['--daemon', fake.address, 'abort', 'nope']);
      assert.equal(missing.code, 69, 'NOT_FOUND');
      assert.equal(missing.stderr, 'soccrctl: NOT_FOUND: no session nope\n');
    });

    it('checkpoint --stop-owner --no-network-lock and restore --no-network-lock pass the options on', async function () {
      const out = path.join(dir, 'opts.soccr');
      const c = await run([
        '--daemon',
        fake.address,
        'checkpoint',
        '--pid',
        '77',
        '--fd',
        '3,5',
        '--stop-owner',
        '--no-network-lock',
        '--lease-ms',
        '9000',
        '--out',
        out,
      ]);
      assert.equal(c.code, 0, c.stderr);
      const lastCheckpoint = (): CheckpointRequestPlain | undefined =>
        fake.calls.filter((x) => x.method === 'Checkpoint').pop()?.request as CheckpointRequestPlain | undefined;
      assert.deepEqual(lastCheckpoint(), {
        pid: 77,
        fds: [3, 5],
        all: false,
        options: { leaseMs: 9000, noNetworkLock: true, stopOwner: true, allowPartial: false, takeBacklog: false },
        dataTransfer: null,
      });
      const plain = await run(['--daemon', fake.address, 'checkpoint', '--pid', '77', '--all', '--out', out]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.deepEqual(lastCheckpoint()?.options, { leaseMs: 0, noNetworkLock: false, stopOwner: false, allowPartial: false, takeBacklog: false });
      const r = await run(['--daemon', fake.address, 'restore', '--in', out, '--hold', '--no-network-lock']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fake.restored?.options.noNetworkLock, true);
    });

    it('restore without --hold goes live at once', async function () {
      const file = path.join(dir, 'live.soccr');
      writeCheckpoint(file, header(1, 'src-live'), [{ id: '3:9', fd: 3, state: withQueues(savedConnection(), q.a, Buffer.alloc(0)) }]);
      const r = await run(['--daemon', fake.address, '--json', 'restore', '--in', file, '--deliver', `unix:${path.join(dir, 'app.sock')}`]);
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout) as { state: string; connections: Array<{ delivered: boolean }> };
      assert.equal(s.state, 'RESUMED');
      assert.deepEqual(
        s.connections.map((c) => c.delivered),
        [true],
      );
      assert.equal(fake.restored?.options.goLive, true);
    });

    it('the library restores a frame stream under flow control and reports the daemon refusing it', async function () {
      const client = new SoccrClient(fake.address);
      try {
        const frames = [...sessionFrames(header(1, 'src-lib'), [{ id: '1:1', fd: 1, state: withQueues(savedConnection(), q.c, q.b) }])];
        assert.ok(frames.length > 16, 'more frames than the call buffers');
        let progress = 0;
        const s = await client.restore(
          { goLive: false },
          // eslint-disable-next-line @typescript-eslint/require-await -- an async source, as a caller's stream would be; it has nothing to wait for
          (async function* () {
            for (const f of frames) {
              progress++;
              yield f;
            }
          })(),
        );
        assert.equal(progress, frames.length);
        assert.equal(s.state, 2);
        assert.ok(fake.restored?.connections[0].state.recvQueue.equals(q.c));

        // a corrupted stream: the daemon's status is what the caller gets
        const broken = frames.filter((f) => frameKind(f) !== 'streamEnd');
        await assert.rejects(client.restore({}, broken), (err: unknown) => {
          assert.match(describeError(err), /^DATA_LOSS: restore stream incomplete/);
          return true;
        });
      } finally {
        client.close();
      }
    });

    it('checkpointToFile reports progress and leaves no file when the stream is cut', async function () {
      const client = new SoccrClient(fake.address);
      try {
        const out = path.join(dir, 'lib.soccr');
        const seen: number[] = [];
        const r = await client.checkpointToFile(88, { all: true }, out, (p) => seen.push(p.bytes));
        assert.equal(r.connections, 2);
        assert.equal(r.queueBytes, q.a.length + q.b.length + q.c.length);
        assert.equal(r.fileBytes, readFileSync(out).length);
        assert.ok(seen.length > 10 && seen[seen.length - 1] === r.fileBytes);
        assert.equal(r.header.sessionId, 'src-88');

        const cut = path.join(dir, 'cut-stream.soccr');
        await assert.rejects(client.checkpointToFile(13, { all: true }, cut), (err: unknown) => {
          assert.equal(describeError(err), 'ABORTED: connection 0 changed while frozen');
          return true;
        });
        assert.deepEqual(
          readdirSync(dir).filter((f) => f.includes('cut-stream')),
          [],
        );
      } finally {
        client.close();
      }
    });

    it('shows control characters from the daemon as visible escapes, and keeps --json exact', async function () {
      // What a hostile or broken daemon could send: a screen clear, a window title, a carriage return
      // that overwrites the line, an 8-bit CSI and a right-to-left override.
      const hostile = 'ok\x1b[2J\x1b]0;pwned\x07\rX\u009b31m\u202eevil';
      const id = 'sess\x1b[31m-1';
      fake.sessions.set(id, {
        sessionId: id,
        kind: 1,
        state: 1,
        pid: 7,
        createdUnixMs: Date.now(),
        leaseExpiresUnixMs: 0,
        connections: [],
        connectionCount: 0,
        queueBytes: 0,
        netns: '',
        deliverUnixPath: '',
        reason: hostile,
      });
      fake.failUnary.Release = { code: grpc.status.FAILED_PRECONDITION, details: `refused: ${hostile}`, kind: 'SESSION_STATE' };
      try {
        // eslint-disable-next-line no-control-regex
        const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
        const list = await run(['--daemon', fake.address, 'sessions']);
        assert.equal(list.code, 0, list.stderr);
        assert.doesNotMatch(list.stdout, controls);
        assert.match(list.stdout, /sess\\x1b\[31m-1/);
        const one = await run(['--daemon', fake.address, 'session', id]);
        assert.equal(one.code, 0, one.stderr);
        assert.doesNotMatch(one.stdout, controls);
        assert.ok(one.stdout.includes('ok\\x1b[2J\\x1b]0;pwned\\x07\\x0dX\\x9b31m\\u202eevil'), one.stdout);
        const failed = await run(['--daemon', fake.address, 'release', id]);
        assert.equal(failed.code, 73, 'FAILED_PRECONDITION');
        assert.doesNotMatch(failed.stderr, controls);
        assert.equal(failed.stderr.trimEnd().split('\n').length, 1, failed.stderr);
        assert.match(failed.stderr, /refused: ok\\x1b\[2J/);
        // --json: still one JSON document, and it decodes to exactly what the daemon sent.
        const j = await run(['--daemon', fake.address, '--json', 'session', id]);
        assert.equal(j.code, 0, j.stderr);
        assert.doesNotMatch(j.stdout, controls);
        const d = JSON.parse(j.stdout) as { sessionId: string; reason: string };
        assert.equal(d.sessionId, id);
        assert.equal(d.reason, hostile);
      } finally {
        fake.sessions.delete(id);
        fake.failUnary = {};
      }
    });
  });
});
