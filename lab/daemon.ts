// Runs a real soccrd as a separate process for the tests, on its own Unix socket and state directory.
import { strict as assert } from 'node:assert';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { isServiceError } from '../client/client';
import { readInstanceId } from '../daemon/custody/instance';
import { lockTableOf } from '../daemon/custody/netlock';

const MAIN = join(__dirname, '..', 'daemon', 'main.js');

const running = new Set<DaemonProcess>();
let counter = 0;

export interface DaemonOptions {
  /** Extra soccrd arguments. */
  args?: string[];
  /**
   * Runs soccrd inside this network namespace (a name under /run/netns), through `ip netns exec`, which
   * execs node in place: `pid` is still soccrd's. The Unix socket lives in the filesystem, which the
   * namespace shares, so the tests reach the daemon from the root namespace all the same.
   */
  netns?: string;
  /** Extra environment (e.g. SOCCRD_CRASH_AT, the test-only fault injection knob of daemon/custody/journal.ts). */
  env?: Record<string, string>;
  /**
   * Socket activation as systemd does it: these listening sockets become the daemon's fds 3, 4, ...
   * with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (the daemon's own pid: sh sets it to $$ and execs
   * node in place). The caller keeps its copies and closes them.
   */
  listenFds?: Array<{ fd: number; name: string }>;
  /**
   * soccrd names its lock table itself, as it does without --lock-table (from its instance id). By
   * default each test daemon gets a --lock-table of the test run's, so that cleanup finds it even when
   * the state directory is gone.
   */
  defaultLockTable?: boolean;
  /** More fds the daemon inherits, after LISTEN_FDS's: fd numbers, or 'ignore' to leave that fd free. */
  inheritFds?: Array<number | 'ignore'>;
  /** The soccrd program to run (e.g. an installed package's dist/daemon/main.js); default this tree's. */
  main?: string;
}

export class DaemonProcess {
  readonly dir: string;
  readonly socketPath: string;
  readonly address: string;
  /** the --lock-table given, so that cleanup can remove exactly it (undefined: soccrd names it) */
  private readonly givenLockTable: string | undefined;
  proc!: ChildProcess;
  output = '';

  private constructor(
    readonly extraArgs: string[],
    readonly netns?: string,
    public env: Record<string, string> = {},
    readonly listenFds: Array<{ fd: number; name: string }> = [],
    defaultLockTable = false,
    readonly inheritFds: Array<number | 'ignore'> = [],
    readonly main: string = MAIN,
  ) {
    this.givenLockTable = defaultLockTable ? undefined : `soccrt${process.pid}d${counter++}`;
    this.dir = mkdtempSync(join(tmpdir(), 'soccrt-d'));
    this.socketPath = join(this.dir, 'soccrd.sock');
    this.address = `unix://${this.socketPath}`;
  }

  /**
   * Starts soccrd and waits until it answers health checks. Takes the extra arguments, or options (in
   * which `netns` starts it inside that network namespace).
   */
  static async start(argsOrOptions: string[] | DaemonOptions = []): Promise<DaemonProcess> {
    const o: DaemonOptions = Array.isArray(argsOrOptions) ? { args: argsOrOptions } : argsOrOptions;
    const d = new DaemonProcess(o.args ?? [], o.netns, o.env, o.listenFds, o.defaultLockTable, o.inheritFds, o.main);
    running.add(d);
    await d.spawn();
    return d;
  }

  private async spawn(): Promise<void> {
    const lockTable = this.givenLockTable ? ['--lock-table', this.givenLockTable] : [];
    const argv = [this.main, '--listen', this.address, '--state-dir', join(this.dir, 'state'), '--log-level', 'debug', ...lockTable, ...this.extraArgs];
    const env = { ...process.env, ...this.env };
    const fds = this.listenFds.map((l) => l.fd);
    if (fds.length) Object.assign(env, { LISTEN_FDS: String(fds.length), LISTEN_FDNAMES: this.listenFds.map((l) => l.name).join(':') });
    const command = [
      ...(this.netns ? ['ip', 'netns', 'exec', this.netns] : []),
      ...(fds.length ? ['sh', '-c', 'LISTEN_PID=$$ exec "$@"', 'sh'] : []),
      process.execPath,
      ...argv,
    ];
    this.proc = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe', ...fds, ...this.inheritFds], env });
    this.proc.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`soccrd exited at start (code ${this.proc.exitCode}): ${this.output}`);
      if (await this.healthy()) return;
      if (Date.now() > deadline) throw new Error(`soccrd not serving within 15 s: ${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private healthy(): Promise<boolean> {
    return new Promise((resolve) => {
      const client = new grpc.Client(this.address, grpc.credentials.createInsecure());
      client.waitForReady(Date.now() + 300, (err) => {
        client.close();
        resolve(!err);
      });
    });
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  /** The daemon's nftables table: the --lock-table given, or the one it named after its instance id (once started). */
  get lockTable(): string {
    if (this.givenLockTable) return this.givenLockTable;
    const id = readInstanceId(this.stateDir);
    if (!id) throw new Error(`soccrd ${this.pid} has no instance id yet in ${this.stateDir}`);
    return lockTableOf({ id, stateDir: this.stateDir });
  }

  /** The daemon's --state-dir. */
  get stateDir(): string {
    return join(this.dir, 'state');
  }

  /** Waits (bounded) until the process has exited; returns how: an exit code or a signal name. */
  async waitExit(timeoutMs: number): Promise<number | NodeJS.Signals> {
    const how = (): number | NodeJS.Signals | null => this.proc.signalCode ?? this.proc.exitCode;
    if (how() === null) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`soccrd ${this.pid} still running after ${timeoutMs} ms`)), timeoutMs);
        this.proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return how() as number | NodeJS.Signals;
  }

  /**
   * Starts soccrd again after it exited, with the same socket, --state-dir and --lock-table (and the
   * environment given, none by default), and waits until it serves.
   */
  async restart(env: Record<string, string> = {}): Promise<void> {
    await this.waitExit(15_000);
    this.env = env;
    this.output += `\n--- restarted ---\n`;
    await this.spawn();
  }

  /** SIGTERM, then waits for the exit; returns the exit code. */
  async stop(): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode;
    const exited = new Promise<number | null>((r) => this.proc.once('exit', (code) => r(code)));
    process.kill(this.pid, 'SIGTERM');
    const t = setTimeout(() => this.kill(), 15_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) process.kill(this.pid, 'SIGKILL');
  }

  /** Stops the daemon (SIGTERM, SIGKILL after 15 s) and removes its files and, if left, its lock table. */
  async cleanup(): Promise<void> {
    await this.stop();
    running.delete(this);
    let table: string | undefined;
    try {
      table = this.lockTable;
    } catch {
      /* it never named one: it did not get that far */
    }
    rmSync(this.dir, { recursive: true, force: true });
    // A daemon killed by a test leaves its table in its own namespace (the others die with theirs).
    const inNs = this.netns ? ['ip', 'netns', 'exec', this.netns, 'nft'] : ['nft'];
    if (table) spawnSync(inNs[0], [...inNs.slice(1), 'delete', 'table', 'inet', table], { stdio: 'ignore' });
  }
}

/** The last lines of every running daemon's log, for a failed test's report. */
export function daemonLogs(lines = 40): string {
  return [...running]
    .map((d) => `--- soccrd ${d.pid}${d.netns ? ` in ${d.netns}` : ''} ---\n${d.output.trim().split('\n').slice(-lines).join('\n')}`)
    .join('\n');
}

export async function cleanupDaemons(): Promise<void> {
  for (const d of [...running]) await d.cleanup();
}

/** Awaits `p` and checks that it failed with the gRPC status `code`; returns the error. */
export async function expectStatus(p: Promise<unknown>, code: grpc.status, what: string): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isServiceError(err), `${what}: not a gRPC error: ${String(err)}`);
    assert.equal(grpc.status[err.code], grpc.status[code], `${what}: ${err.details}`);
    return err;
  }
  throw new assert.AssertionError({ message: `${what}: succeeded, expected ${grpc.status[code]}` });
}
