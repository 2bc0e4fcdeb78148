// `npm run demo` (demo/demo.ts) as a new user runs it, but with stdout a pipe: it must pass, say so
// with its freeze time, and leave nothing behind (namespaces, processes, temporary directories); Ctrl-C
// in the middle, or a reader that goes away, must not keep it from cleaning up; without root it must
// stop at once with a clear message.
import { strict as assert } from 'node:assert';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { NOBODY, OtherUserCopy } from './support/other-user';

const DEMO = join(__dirname, '..', 'demo', 'demo.js');

interface Run {
  child: ChildProcess;
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: ChildProcess[] = [];

/**
 * Starts the demo (`demo`: its path, the checkout's by default) in a session of its own (so that its
 * descendants can be found by session id).
 */
function startDemo(args: string[] = [], prefix: string[] = [], demo = DEMO): Run {
  const argv = [...prefix, process.execPath, demo, ...args];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  started.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exit };
}

async function exitWithin(r: Run, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the demo did not exit within ${ms} ms; output:\n${r.output()}`)), ms);
  });
  try {
    return await Promise.race([r.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Processes still alive in the session the demo led (its pid is the session id). */
function sessionMembers(sid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // fields after the command name, which is in parentheses and may hold spaces
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[3]) === sid) pids.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

function namespacesOf(pid: number): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(`soccrt${pid}`));
}

/** The temporary directories the demo named in its output (daemon state, hand-over socket). */
function tempDirsNamed(output: string): string[] {
  const dirs = new Set<string>();
  for (const m of output.matchAll(/(\/tmp\/(?:soccrt-d|soccrd-demo-)[A-Za-z0-9]+)/g)) dirs.add(m[1]);
  return [...dirs];
}

function assertNothingLeft(r: Run): void {
  const pid = r.child.pid as number;
  assert.deepEqual(sessionMembers(pid), [], 'processes of the demo still running');
  assert.deepEqual(namespacesOf(pid), [], 'namespaces of the demo left behind');
  const dirs = tempDirsNamed(r.output());
  assert.ok(dirs.length >= 2, `the demo names its temporary directories: ${dirs.join(', ')}`);
  assert.deepEqual(
    dirs.filter((d) => existsSync(d)),
    [],
    'temporary directories left behind',
  );
}

describe('npm run demo', function () {
  this.timeout(120_000);

  // The safety net: a demo that hangs is interrupted (it cleans up), then killed with its session.
  afterEach(async () => {
    for (const c of started.splice(0)) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      process.kill(c.pid as number, 'SIGINT');
      await new Promise((r) => setTimeout(r, 20_000));
      for (const pid of sessionMembers(c.pid as number)) process.kill(pid, 'SIGKILL');
      for (const ns of namespacesOf(c.pid as number)) spawnSync('ip', ['netns', 'del', ns]);
    }
  });

  it("moves streaming connections from A to B, with two unaccepted ones from the listener's queue, verifies every byte, reports PASS and cleans up", async () => {
    const r = startDemo();
    const { code } = await exitWithin(r, 90_000);
    const out = r.output();
    assert.equal(code, 0, out);
    assert.match(out, /│ result\s+│ PASS\s+│/);
    const freeze = /│ freeze\s+│ ([\d.]+) (ms|s) /.exec(out);
    assert.ok(freeze, `a freeze time in the summary:\n${out}`);
    assert.match(out, /checkpoint\+restore .* connection\(s\), .* of queues/, 'phases shown as they complete');
    assert.match(out, /│ peer's longest gap\s+│ [\d.]+ m?s/);
    assert.match(out, /✓ the 2 connection\(s\) waiting in the listener's queue were taken and moved; the listener stays in A/, 'the backlog moved');
    assert.match(out, /✓ they arrived in B as established connections/);
    assert.match(out, /C receives t=[\d.]+s KiB per 100 ms: \d+/, 'the plain ticker (stdout is a pipe)');
    assert.ok(!out.includes('\x1b['), 'no terminal escapes when stdout is not a terminal');
    assertNothingLeft(r);
    process.stdout.write(`      ${out.slice(out.lastIndexOf('│ freeze')).split('\n')[0]}\n`);
  });

  it('--upgrade: a listener and its connections handed to a new process on one host while clients connect, every byte verified, PASS', async () => {
    const r = startDemo(['--upgrade']);
    const { code } = await exitWithin(r, 90_000);
    const out = r.output();
    assert.equal(code, 0, out);
    assert.match(out, /│ result\s+│ PASS\s+│/);
    assert.match(out, /✓ handoff\s+[\d.]+ m?s\s+\d+ socket\(s\) handed to the new owner/, 'the hand-off phase shown');
    assert.match(out, /no failed connect: all 18 client connection\(s\) established/);
    assert.match(out, /the new process holds all 18/);
    assert.match(out, /the clients saw no RST and no FIN/);
    assertNothingLeft(r);
    process.stdout.write(`      ${out.slice(out.lastIndexOf('│ freeze')).split('\n')[0]}\n`);
  });

  it('Ctrl-C in the middle of streaming: exit 130 and nothing left behind', async () => {
    const r = startDemo(['--connections', '1']);
    const deadline = Date.now() + 60_000;
    while (!r.output().includes('C receives t=') && r.child.exitCode === null && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.match(r.output(), /C receives t=/, 'the demo got as far as streaming');
    // Only the demo gets the signal (not its children, as a terminal's Ctrl-C would): it must end them.
    process.kill(r.child.pid as number, 'SIGINT');
    const { code } = await exitWithin(r, 60_000);
    assert.equal(code, 130, r.output());
    assert.match(r.output(), /interrupted in step \d/);
    assert.match(r.output(), /│ result\s+│ FAIL\s+│/);
    assertNothingLeft(r);
  });

  it('a reader that goes away (`npm run demo | head`) does not stop it from finishing and cleaning up', async () => {
    const r = startDemo(['--connections', '1']);
    await new Promise<void>((resolve) => r.child.stdout?.once('data', () => resolve()));
    r.child.stdout?.destroy();
    const { code } = await exitWithin(r, 90_000);
    assert.equal(code, 0, r.output());
    const pid = r.child.pid as number;
    assert.deepEqual(sessionMembers(pid), [], 'processes of the demo still running');
    assert.deepEqual(namespacesOf(pid), [], 'namespaces of the demo left behind');
  });

  it('without root it stops at once and says why', async function () {
    // Run as uid 65534, which may not be able to enter this checkout: from a copy it can read.
    const demo = OtherUserCopy.of(NOBODY, NOBODY).program(this, 'demo/demo.js');
    const r = startDemo([], ['setpriv', '--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups'], demo);
    const { code } = await exitWithin(r, 20_000);
    assert.equal(code, 1);
    assert.match(r.output(), /^demo: root is needed .*run as root\n$/);
  });
});
