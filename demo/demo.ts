// `npm run demo`: live TCP connections moved from one host to another while they stream both ways.
//
// On a small LAN made of network namespaces (lab/lan.ts: hosts A and B, client C, one bridge,
// no route out) it starts a soccrd on each host, opens connections from C to a server in A on the
// service address, streams deterministic bytes both ways, and moves the connections to a new owner
// process in B with migrate() (client/migrate.ts), whose hook moves the service address and announces
// it. Meanwhile a ticker shows what C receives in each 100 ms, so the freeze shows for what it is: a
// short stall. Then it streams on from B, kills the old owner in A, checks every byte both ways, and
// removes everything it made, also on failure or Ctrl-C. Exit code 0 only when every check passed.
//
// `npm run demo -- --upgrade` shows the same-host upgrade instead: a server in A with a listener and live
// connections hands them, listener included, to a new process beside it (migrate() on one daemon and
// namespace hands the sockets themselves off), while clients keep connecting; then the old process is
// killed and every byte of every connection checked both ways.
//
// It is a lab program, not part of the client library: the processes are the test suite's own (soccrd
// as lab/daemon.ts starts it, the streaming fixture lab/fixtures/multi.ts), so the demo shows
// exactly what the tests exercise; the orchestration is the library's migrate().
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError } from 'commander';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { LAN_NODES, Lan, SERVICE_V4, SERVICE_V6, destroyLans, leftoverLanNamespaces, shellQuote } from '../lab/lan';
import { MultiConfig, MultiFixture, MultiStatus, Offsets, killAllMulti, queuedOffsets, untilExchanged } from '../lab/multi';
import { lockEntries } from '../lab/netns';
import { NEEDED, PreflightError, ensureTools, requireRoot } from '../lab/preflight';
import { Display, StreamSample } from './display';
import { formatBytes, formatMs } from '../client/format';
import { MigrateReport, migrate } from '../client/migrate';

const ROOT = path.join(__dirname, '..', '..');
const SOCCRCTL = path.join(__dirname, '..', 'client', 'soccrctl.js');
const PORT = 5000;
/** Per connection and direction, every 10 ms fixture tick: 800 KiB/s each way. */
const BYTES_PER_TICK = 8 * 1024;
const SAMPLE_MS = 100;
const STREAM_BEFORE_MS = 3000;
const STREAM_AFTER_MS = 2500;
const STREAM_AFTER_KILL_MS = 1500;
/** The whole demo, cleanup excepted: past it, it fails and cleans up. */
const DEADLINE_MS = 120_000;
const STEPS = 6;
const TCP_ESTABLISHED = 1;
/** --upgrade: clients connect in three waves of this many, before, during and after the hand-off. */
const UPGRADE_CLIENTS_PER_WAVE = 5;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A command line as a user would type it: `node` for this Node, paths in the repository relative. */
function shellLine(argv: readonly string[]): string {
  return argv
    .map((a) => (a === process.execPath ? 'node' : a.startsWith(`${ROOT}/`) ? path.relative(process.cwd(), a) : a))
    .map(shellQuote)
    .join(' ');
}

/** Rejects with `what` if `p` has not settled within `ms`. */
async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls the peer every 100 ms: the bytes it received in each interval, and the longest stall it saw. */
class PeerWatch {
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  last: MultiStatus | undefined;

  constructor(
    private readonly peer: MultiFixture,
    private readonly onSample: (s: StreamSample) => void,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.poll();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async poll(): Promise<void> {
    const t0 = performance.now();
    let prev: { at: number; received: number } | undefined;
    for (let i = 0; this.running && i < DEADLINE_MS / SAMPLE_MS; i++) {
      const at = performance.now();
      try {
        this.last = await this.peer.status();
      } catch {
        return; // the peer is gone: the steps report why
      }
      const received = this.last.totals.received;
      if (prev) {
        const per100ms = Math.round(((received - prev.received) * SAMPLE_MS) / Math.max(1, at - prev.at));
        this.onSample({ atMs: at - t0, per100ms, totalReceived: received, longestGapMs: longestGap(this.last) });
      }
      prev = { at, received };
      await sleep(Math.max(0, SAMPLE_MS - (performance.now() - at)));
    }
  }
}

/** The longest stall between two reads that got bytes, over every connection of a fixture. */
function longestGap(s: MultiStatus): number {
  return Math.max(0, ...s.connections.map((c) => c.maxGapMs));
}

type Outcome = 'pass' | 'fail' | 'interrupted';

class Demo {
  private readonly d = new Display();
  private readonly started = performance.now();
  private stepNo = 0;
  private stepTitle = '';
  private lan: Lan | undefined;
  private deliverDir: string | undefined;
  private watch: PeerWatch | undefined;
  private interrupted = false;
  private finishing: Promise<void> | undefined;
  /** The summary's rows, filled in as the demo gets there. */
  private readonly rows: Array<[string, string]> = [];

  constructor(
    private readonly connections: number,
    private readonly upgrade: boolean,
    /** cross-host: connections that wait unaccepted in the server's queue when it migrates */
    private readonly backlog: number,
  ) {}

  /** Runs the demo, then cleans up and exits: 0 on PASS, 1 on FAIL, 130 on Ctrl-C. */
  async main(): Promise<void> {
    try {
      requireRoot();
      ensureTools(NEEDED.filter((t) => t.command === 'ip' || t.command === 'nft'));
    } catch (err) {
      if (!(err instanceof PreflightError)) throw err;
      process.stderr.write(`demo: ${err.message}\n`);
      process.exit(1);
    }
    // A reader that went away (`npm run demo | head`) must not stop the cleanup: lines to it are dropped.
    process.stdout.on('error', () => undefined);
    process.on('uncaughtException', (err) => void this.finish('fail', err));
    process.on('unhandledRejection', (err) => void this.finish('fail', err));
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.on(sig, () => {
        this.interrupted = true;
        void this.finish('interrupted', new Error(`${sig} received`));
      });
    }
    const watchdog = setTimeout(() => void this.finish('fail', new Error(`the demo did not finish within ${DEADLINE_MS / 1000} s`)), DEADLINE_MS);
    try {
      await this.run();
      await this.finish('pass');
    } catch (err) {
      await this.finish(this.interrupted ? 'interrupted' : 'fail', err);
    } finally {
      clearTimeout(watchdog);
    }
  }

  private enter(title: string): void {
    this.stepNo++;
    this.stepTitle = title;
    this.d.step(this.stepNo, STEPS, title);
  }

  private async run(): Promise<void> {
    if (this.upgrade) return this.runUpgrade();
    const d = this.d;
    const queued = this.backlog;
    const total = this.connections + queued;
    d.title(
      `soccrd demo: ${this.connections} live TCP connection(s) moved from host A to host B while they stream` +
        (queued ? `, and ${queued} waiting unaccepted in the server's listener` : ''),
    );
    const lan = this.makeLan();

    this.enter('a soccrd on each host, each with its own socket and state directory');
    // B takes direct transfers on its LAN address: the queue bytes go from daemon to daemon.
    const [a, b] = await Promise.all([
      DaemonProcess.start({ netns: lan.ns.A }),
      DaemonProcess.start({ netns: lan.ns.B, args: ['--data-listen', `${LAN_NODES.B.v4}:0`] }),
    ]);
    for (const [name, daemon] of [
      ['A', a],
      ['B', b],
    ] as const) {
      d.command(shellLine(daemon.proc.spawnargs));
      d.ok(`soccrd on host ${name}: pid ${daemon.pid}, serving ${daemon.address}`);
    }

    this.enter(`${this.connections} connection(s) from C to a server in A, streaming both ways`);
    const stream = { streaming: true, bytesPerTick: BYTES_PER_TICK };
    // acceptMore keeps the listener open for the connections that will wait in its queue.
    const server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: PORT, count: this.connections, acceptMore: queued, ...stream });
    d.command(shellLine(server.proc.spawnargs));
    const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: this.connections, ...stream });
    d.command(shellLine(clients.proc.spawnargs));
    await Promise.all([server.waitConnected(15_000), clients.waitConnected(15_000)]);
    d.ok(
      `server pid ${server.pid} in A and client pid ${clients.pid} in C connected; each sends ${formatBytes(BYTES_PER_TICK * 100)}/s per connection and checks every byte it receives`,
    );
    const clientFixtures = [clients];
    if (queued) {
      // The server accepts no more: these connect (the kernel completes their handshakes) and wait in its
      // accept queue, sending what fits; migrate() takes them from the queue and moves them too.
      await server.accept(false);
      const late = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: queued, firstIndex: this.connections, ...stream });
      d.command(shellLine(late.proc.spawnargs));
      clientFixtures.push(late);
      await late.waitConnected(15_000);
      d.ok(`${queued} more connection(s) from client pid ${late.pid} in C, which the server does not accept: they wait in its listener's queue`);
    }
    this.deliverDir = mkdtempSync(path.join(tmpdir(), 'soccrd-demo-'));
    const deliverPath = path.join(this.deliverDir, 'handover.sock');
    // Started now, so that the hand-over finds it ready; it learns where to go on from at the move.
    const receiver = await MultiFixture.start(lan.ns.B, { mode: 'adopt', unixPath: deliverPath, count: total, continueFrom: {}, ...stream });
    d.command(shellLine(receiver.proc.spawnargs));
    d.ok(`new owner pid ${receiver.pid} in B, waiting for the hand-over on ${deliverPath}`);
    this.watch = new PeerWatch(clients, (s) => d.sample(s));
    d.startTicker('C receives');
    this.watch.start();
    await sleep(STREAM_BEFORE_MS);

    this.enter('migrate() from A to B: the hook moves the service address, B delivers to the new owner');
    const hook = lan.moveServiceCommand('A', 'B');
    d.info('from a shell, the same migration is:');
    d.command(`HOOK=${shellQuote(hook)}`);
    d.command(
      `${shellLine([process.execPath, SOCCRCTL, 'migrate', '--from', a.address, '--to', b.address, '--pid', String(server.pid), '--netns', lan.nsPath('B'), '--deliver', `unix:${deliverPath}`])} --before-resume "$HOOK"`,
    );
    // The application's own part of a hand-over: the old owner stops its I/O and says how far each
    // stream got, and the new owner goes on from there.
    const quiesced = await server.quiesce();
    // The queued connections start their streams at the new owner: the old one never read or wrote them.
    const offsets = { ...quiesced.offsets, ...queuedOffsets({ family: 'ipv4', ip: SERVICE_V4, port: PORT }, LAN_NODES.C.v4, this.connections, queued) };
    await receiver.continueFrom(offsets);
    const report = await migrate({
      from: a.address,
      to: b.address,
      pid: server.pid,
      netns: lan.nsPath('B'),
      deliverUnixPath: deliverPath,
      beforeResume: hook,
      hookTimeoutMs: 10_000,
      timeoutMs: 10_000,
      onPhase: (e) => d.phase(e),
    });
    this.recordMigration(report);
    for (const s of report.skipped) d.info(`left in A: fd ${s.fd} (${s.kind}): ${s.reason}`);
    await receiver.waitEvent('handover-live', 15_000, ['error', 'handover-failed']);
    d.ok(
      `${report.connections} connection(s) live in B, ${formatBytes(report.queueBytes)} of queues moved; frozen for ${d.paint('bold', formatMs(report.freezeMs))}`,
    );
    d.ok(`service address now on host ${lan.serviceHost() ?? '(none!)'}`);

    this.enter('streaming on from B; the old owner in A is killed; every byte checked both ways');
    await this.killOldOwner(
      server,
      'the old owner, stopped since the checkpoint',
      'old owner killed: its sockets were released silently, the peer sees nothing',
    );
    const gap = longestGap(await clients.status());
    // More than the freeze: the applications' own hand-over is in it too (the old owner stops writing
    // before the checkpoint, the new one starts once it is live).
    this.rows.push([
      "peer's longest gap",
      `${formatMs(gap)} without a byte on any connection: the freeze plus the applications' hand-over (old owner quiesced before the checkpoint, new owner writing after 'live')`,
    ]);
    await Promise.all([receiver, ...clientFixtures].map((f) => f.stream(false)));
    const [rs, cs] = await untilExchanged(receiver, clientFixtures, 30_000);
    this.verify(cs, rs, offsets, lockEntries(lan.ns.B, b.lockTable), report);
  }

  /**
   * The same-host upgrade: one soccrd in A; a server in A with its listener and live connections (half of
   * them not read for a while, so their queues fill), clients in C that keep connecting before, during and
   * after; migrate() from A to A hands the sockets to a new server process in A.
   */
  private async runUpgrade(): Promise<void> {
    const d = this.d;
    const n = this.connections;
    d.title(
      `soccrd demo --upgrade: a server with a listener and ${n} live connection(s) upgraded to a new process on the same host, while clients keep connecting`,
    );
    const lan = this.makeLan();

    this.enter('a soccrd on host A');
    const a = await DaemonProcess.start({ netns: lan.ns.A });
    d.command(shellLine(a.proc.spawnargs));
    d.ok(`soccrd on host A: pid ${a.pid}, serving ${a.address}`);

    this.enter(`a server in A with its listener and ${n} connection(s) from C, streaming both ways`);
    const stream = { streaming: true, bytesPerTick: BYTES_PER_TICK };
    const more = UPGRADE_CLIENTS_PER_WAVE * 3;
    const server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: PORT, count: n, acceptMore: more, ...stream });
    d.command(shellLine(server.proc.spawnargs));
    const clients = [await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: n, ...stream })];
    await Promise.all([server.waitConnected(15_000), clients[0].waitConnected(15_000)]);
    await server.read(false, { stride: 2 }); // every other connection unread for a while: full queues
    d.ok(
      `server pid ${server.pid} in A accepted ${n} connection(s) from client pid ${clients[0].pid} in C; every other one is not read for now, so its queues fill`,
    );
    this.deliverDir = mkdtempSync(path.join(tmpdir(), 'soccrd-demo-'));
    const deliverPath = path.join(this.deliverDir, 'handover.sock');
    const next = await MultiFixture.start(lan.ns.A, { mode: 'adopt', unixPath: deliverPath, count: n, acceptMore: more, continueFrom: {}, ...stream });
    d.command(shellLine(next.proc.spawnargs));
    d.ok(`the new version: server pid ${next.pid} in A, beside the old one, waiting for the hand-over on ${deliverPath}`);
    // Clients that connect in waves, numbered after the first ones: each wave its own process in C.
    let firstIndex = n;
    const wave = async (): Promise<MultiFixture> => {
      const cfg: MultiConfig = { mode: 'clients', ip: SERVICE_V4, port: PORT, count: UPGRADE_CLIENTS_PER_WAVE, firstIndex, ...stream };
      firstIndex += UPGRADE_CLIENTS_PER_WAVE;
      const f = await MultiFixture.start(lan.ns.C, cfg);
      clients.push(f);
      return f;
    };
    this.watch = new PeerWatch(clients[0], (s) => d.sample(s));
    d.startTicker('C receives');
    this.watch.start();
    await wave();
    await sleep(STREAM_BEFORE_MS);

    this.enter('migrate() on one daemon and namespace: the live sockets, listener included, handed to the new process');
    d.info('from a shell, the same upgrade is:');
    d.command(
      shellLine([
        process.execPath,
        SOCCRCTL,
        'migrate',
        '--from',
        a.address,
        '--to',
        a.address,
        '--pid',
        String(server.pid),
        '--netns',
        lan.nsPath('A'),
        '--deliver',
        `unix:${deliverPath}`,
        '--listeners',
      ]),
    );
    const { offsets } = await server.quiesce();
    await next.continueFrom(offsets);
    const during = wave(); // connecting while the sockets change hands
    const report = await migrate({
      from: a.address,
      to: a.address,
      pid: server.pid,
      netns: lan.nsPath('A'),
      deliverUnixPath: deliverPath,
      listeners: true,
      timeoutMs: 10_000,
      onPhase: (e) => d.phase(e),
    });
    if (report.transport !== 'handoff') throw new Error(`migrate did not hand off (transport ${report.transport})`);
    await during;
    await next.waitEvent('handover-live', 15_000, ['error', 'handover-failed']);
    this.rows.push(['sockets', `${report.connections} (a listener and the connections the old process held) handed to the new process in A`]);
    this.rows.push(['freeze', `${formatMs(report.freezeMs)}: no process served the sockets (old one stopped until the new one acknowledged)`]);
    d.ok(
      `${report.connections} socket(s) live in the new process, listener included; no process served them for ${d.paint('bold', formatMs(report.freezeMs))}`,
    );

    this.enter('more clients connect to the new process; the old one is killed; every byte checked both ways');
    await wave();
    await this.killOldOwner(
      server,
      'the old version, stopped since the hand-off',
      'old server killed: the sockets live on in the new process, the clients see nothing',
    );
    await Promise.all([next.stream(false), ...clients.map((c) => c.stream(false))]);
    await next.read(true);
    const [rs, cs] = await untilExchanged(next, clients, 30_000);
    this.verifyUpgrade(rs, cs, n + UPGRADE_CLIENTS_PER_WAVE * 3);
  }

  /** The upgrade's checks (already byte-exact both ways: untilExchanged); `cs`: every client fixture's connections. Throws on a failure. */
  private verifyUpgrade(rs: MultiStatus, cs: MultiStatus, total: number): void {
    const { check, failures } = this.checker();
    check(
      true,
      `every byte arrived exactly once, in order, both ways: C → server ${formatBytes(cs.totals.sent)}, server → C ${formatBytes(cs.totals.received)}`,
    );
    check(
      cs.error === null && cs.totals.connections === total,
      `no failed connect: all ${total} client connection(s) established, before, during and after the hand-off`,
    );
    check(rs.connections.length === total, `the new process holds all ${total}: the ones handed over and the ones it accepted on the handed listener`);
    check(cs.totals.eofs + cs.totals.errors === 0, 'the clients saw no RST and no FIN');
    this.rows.push(['connections', `${total} × ${SERVICE_V4}:${PORT} ⇄ ${LAN_NODES.C.v4}: none refused, none reset`]);
    this.rows.push([
      'verified',
      `C → server ${formatBytes(cs.totals.sent)}, server → C ${formatBytes(cs.totals.received)}: byte-exact, exactly once, no RST, no FIN`,
    ]);
    if (failures.length > 0) throw new Error(`checks failed: ${failures.join('; ')}`);
  }

  /** Both flows' end: streams on a while, the old owner is killed (shown as the shell command), streams on, the ticker stops. */
  private async killOldOwner(server: MultiFixture, what: string, done: string): Promise<void> {
    const d = this.d;
    await sleep(STREAM_AFTER_MS);
    d.command(`kill -9 ${server.pid}    # ${what}`);
    server.kill();
    await bounded(server.exited(), 5000, 'the old owner exiting');
    d.ok(done);
    await sleep(STREAM_AFTER_KILL_MS);
    await this.watch?.stop();
    d.stopTicker();
  }

  /** Step 1 of both flows: the LAN. */
  private makeLan(): Lan {
    const d = this.d;
    this.enter('a LAN in network namespaces: hosts A and B, client C, one bridge, no route out');
    const lan = (this.lan = Lan.create());
    d.info(`switch    ${lan.ns.S}: bridge br0, a veth port to each machine`);
    for (const [role, what] of [
      ['A', 'host A  '],
      ['B', 'host B  '],
      ['C', 'client C'],
    ] as const) {
      d.info(`${what}  ${lan.ns[role]}: eth0 ${LAN_NODES[role].v4}, ${LAN_NODES[role].v6}`);
    }
    d.info(`service address ${SERVICE_V4} and ${SERVICE_V6} on host A`);
    d.info(`(look inside while it runs: ip netns exec ${lan.ns.C} ss -tni)`);
    return lan;
  }

  private recordMigration(r: MigrateReport): void {
    this.rows.push(['connections', `${r.connections} × ${SERVICE_V4}:${PORT} ⇄ ${LAN_NODES.C.v4}, moved from host A to host B`]);
    this.rows.push([
      'freeze',
      `${formatMs(r.freezeMs)} (checkpoint to destination live; frames ${r.transport === 'direct' ? 'sent straight from A to B' : 'relayed by the orchestrator'})`,
    ]);
    this.rows.push(['phases', r.phases.map((p) => `${p.name} ${formatMs(p.ms)}`).join(', ')]);
    this.rows.push(['queue bytes moved', formatBytes(r.queueBytes)]);
  }

  /** A check line each (✓ or ✗), the failed ones collected for the step's verdict. */
  private checker(): { check: (ok: boolean, what: string) => void; failures: string[] } {
    const failures: string[] = [];
    const check = (ok: boolean, what: string): void => {
      if (ok) this.d.ok(what);
      else {
        this.d.bad(what);
        failures.push(what);
      }
    };
    return { check, failures };
  }

  /** Checks the final statuses of both ends (already byte-exact both ways: untilExchanged). Throws on a failure. */
  private verify(cs: MultiStatus, rs: MultiStatus, before: Offsets, lockLeft: number, report: MigrateReport): void {
    const { check, failures } = this.checker();
    const toServer = cs.totals.sent;
    const toClient = cs.totals.received;
    const total = this.connections + this.backlog;
    check(true, `every byte arrived exactly once, in order, both ways: C → server ${formatBytes(toServer)}, server → C ${formatBytes(toClient)}`);
    check(cs.connections.length === total && rs.connections.length === total, `${total} connection(s) at both ends`);
    if (this.backlog) {
      const listener = report.skipped.find((s) => s.kind === 'LISTENING');
      check(
        listener?.reason.startsWith(`listener stays; ${this.backlog} queued connection(s) taken`) === true,
        `the ${this.backlog} connection(s) waiting in the listener's queue were taken and moved; the listener stays in A`,
      );
      check(
        rs.connections.filter((c) => c.index >= this.connections).every((c) => c.handedState === 'ESTABLISHED'),
        'they arrived in B as established connections',
      );
    }
    check(
      cs.connections.every((c) => c.error === null && !c.eof && c.state === TCP_ESTABLISHED),
      'the client saw no RST and no FIN: every connection still ESTABLISHED',
    );
    check(
      rs.connections.every((c) => {
        const from = before[c.key];
        return from !== undefined && c.received > from.received && c.sent > from.sent;
      }),
      'the new owner in B sent and received on every connection',
    );
    check(lockLeft === 0, 'the network lock on B is lifted');
    this.rows.push(['verified', `C → server ${formatBytes(toServer)}, server → C ${formatBytes(toClient)}: byte-exact, exactly once, no RST, no FIN`]);
    this.rows.push(['old owner', 'killed in A after the move; the peer did not notice']);
    if (failures.length > 0) throw new Error(`checks failed: ${failures.join('; ')}`);
  }

  /** Cleans up, prints the summary and exits; the first call wins, later ones wait for it. */
  finish(outcome: Outcome, err?: unknown): Promise<void> {
    this.finishing ??= this.doFinish(outcome, err);
    return this.finishing;
  }

  private async doFinish(outcome: Outcome, err?: unknown): Promise<void> {
    const d = this.d;
    await bounded(this.watch?.stop() ?? Promise.resolve(), 2000, 'the ticker').catch(() => undefined);
    d.stopTicker();
    let pass = outcome === 'pass';
    if (!pass) {
      const why = err instanceof Error ? err.message : String(err);
      d.line();
      d.bad(
        d.paint(
          'red',
          `${outcome === 'interrupted' ? 'interrupted' : 'failed'}${this.stepNo > 0 ? ` in step ${this.stepNo} (${this.stepTitle})` : ''}: ${why}`,
        ),
      );
      this.rows.push([outcome === 'interrupted' ? 'interrupted' : 'failure', why]);
      if (outcome === 'fail') {
        const logs = daemonLogs(15);
        if (logs) d.line(`\nthe daemons' last log lines:\n${logs}`);
      }
    }
    if (this.lan || this.deliverDir) {
      this.stepNo = STEPS - 1;
      this.enter('cleanup: processes, daemons, namespaces, temporary files');
      try {
        await bounded(killAllMulti(), 10_000, 'stopping the streaming processes');
        await bounded(cleanupDaemons(), 40_000, 'stopping the daemons');
        d.ok('every process the demo started has exited; the daemons removed their nftables tables and state directories');
      } catch (e) {
        pass = false;
        d.bad(String(e));
      }
      destroyLans();
      if (this.deliverDir) rmSync(this.deliverDir, { recursive: true, force: true });
      const left = leftoverLanNamespaces();
      if (left.length > 0) {
        pass = false;
        d.bad(`namespaces left behind: ${left.join(', ')}`);
        this.rows.push(['cleanup', `namespaces left behind: ${left.join(', ')}`]);
      } else d.ok(`namespaces ${this.lan ? Object.values(this.lan.ns).join(', ') : ''} removed`);
    }
    this.rows.push(['total time', formatMs(performance.now() - this.started)]);
    d.summary(this.rows, pass);
    process.exit(pass ? 0 : outcome === 'interrupted' ? 130 : 1);
  }
}

function parseCount(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 50) throw new InvalidArgumentError('a whole number from 1 to 50');
  return Number(v);
}

function parseBacklog(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 50) throw new InvalidArgumentError('a whole number from 0 to 50');
  return Number(v);
}

const program = new Command('demo')
  .description('Live migration of streaming TCP connections between two hosts (network namespaces), shown step by step; needs root')
  .option('-c, --connections <n>', 'connections to stream and move', parseCount, 3)
  .option('--upgrade', 'show a same-host upgrade instead: a server with its listener handed to a new process beside it while clients keep connecting', false)
  .option('--backlog <n>', "cross-host: connections left waiting in the server's accept queue when it migrates (0 for none)", parseBacklog, 2)
  .action(async (opts: { connections: number; upgrade: boolean; backlog: number }) => {
    await new Demo(opts.connections, opts.upgrade, opts.backlog).main();
  });
void program.parseAsync(process.argv);
