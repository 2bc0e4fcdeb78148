// migrate(): moves a process's live TCP connections from one soccrd to another, for orchestrators.
//
//   1. checkpoint+restore  Checkpoint on the source, its frames piped as they come into a Restore on the
//                          destination that holds the rebuilt sockets (go_live false, IP_TRANSPARENT):
//                          no file, memory bounded by the two calls' flow-control windows.
//   2. hook                optional: a shell command (typically moving the service address), both
//                          sessions' leases renewed while it runs.
//   3. resume-destination  the destination's sockets go live and are delivered.
//   4. release-source      the source commits (its sockets stay frozen and silent, the owner stopped).
//
// Any failure before the destination is live rolls back: Abort on the destination session, Resume on
// the source session (which continues a stopped owner), then a MigrateError says which phase failed,
// why, and what was rolled back. Once the destination is live nothing is rolled back: a Release that
// keeps failing is retried a few times, then reported as a warning.
//
// A destination Resume without an answer (deadline exceeded, connection lost) may have gone live, or
// its hand-over may still run: the destination is asked (GetSession, and Abort, which the daemon refuses
// with SESSION_BUSY while a hand-over is in flight) until it says, for as long as a hand-over can last
// (RESUME_DEADLINE_MS from the Resume). Live: the migration goes on (the source is released). Not live:
// rolled back. No answer for all that time (its daemon gone or cut off): rolled back too, and the
// MigrateError says that the destination was taken as not live (leaving the source frozen would not
// help: the end of its lease resumes it anyway).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { type SocketAddress, addressFromMsg } from '../protocol/address';
import { SoccrError } from '../protocol/errors';
import { isServiceError, soccrErrorOf, statusTrailers } from '../protocol/error-status';
import { RESUME_DEADLINE_MS } from '../protocol/handover';
import { decodeFrame, encodedFrameKind, formatsRead, frameKind, unpackFrames } from '../protocol/frames';
import { DATA_KEY_BYTES, TRANSFER_ID_BYTES } from '../protocol/sealed-records';
import type { AddressMsg, FrameMsg, SessionHeaderMsg } from '../protocol/messages';
import { SessionState, SoccrClient, describeError, normalizeAddress, sessionStateName, warmCodecs } from './client';
import type { CheckpointOptions, GetVersionResponseMsg, SessionInfoMsg } from './client';

// ---- options, events, report --------------------------------------------------------------------

export type MigratePhase = 'handoff' | 'checkpoint+restore' | 'hook' | 'resume-destination' | 'release-source';

/**
 * The phases in the order they run ('hook' only with beforeResume; 'handoff' alone, instead of all the
 * others, when source and destination are one daemon and one namespace: see MigrateOptions.handoff).
 */
export const MIGRATE_PHASES: readonly MigratePhase[] = ['handoff', 'checkpoint+restore', 'hook', 'resume-destination', 'release-source'];

/** Default time the beforeResume hook may take. */
export const DEFAULT_HOOK_TIMEOUT_MS = 30000;
/** How many times Release on the source is tried once the destination is live, by default. */
export const DEFAULT_RELEASE_ATTEMPTS = 3;

export interface MigrateOptions {
  /** source daemon address (unix:///path, a bare /path, or host:port) */
  from: string;
  /** destination daemon address */
  to: string;
  /** the process that owns the connections, on the source host */
  pid: number;
  /** its fds to migrate; empty or absent: every connection the source daemon supports */
  fds?: readonly number[];
  /** network namespace to rebuild in on the destination (/proc/PID/ns/net, /run/netns/NAME); absent: the daemon's own */
  netns?: string;
  /** Unix socket of the process that takes the connections at the destination (README, hand-over protocol) */
  deliverUnixPath?: string;
  /**
   * Shell command run with `sh -c` between the restore and the destination's Resume, typically to move
   * the service address. Its environment: the migrator's, plus SOCCR_SOURCE_SESSION,
   * SOCCR_DEST_SESSION, SOCCR_PID, SOCCR_FROM, SOCCR_TO, SOCCR_CONNECTIONS (a JSON array of
   * {local, remote}, each {family: "ipv4"|"ipv6", ip, port}, in stream order; left out when over 96 KiB)
   * and SOCCR_CONNECTIONS_FILE (a file with the same JSON, always). A non-zero exit or a timeout fails the
   * migration; its stdout and stderr are captured into the report.
   */
  beforeResume?: string;
  /** stop the owner (SIGSTOP) for the checkpoint; continued on rollback, left stopped on success. Default true. */
  stopOwner?: boolean;
  /**
   * Move every connection that can be moved: those that cannot (kernel TLS, TCP-MD5/AO keys, MPTCP,
   * states the engine does not support) stay with the old owner and are listed in MigrateReport.skipped.
   * Default false: one such connection fails the migration before anything is frozen.
   */
  allowPartial?: boolean;
  /**
   * Without fds (every connection): the connections waiting in the old owner's accept queues, which no
   * listener can carry to another host, are accepted on its behalf and moved with the others (the
   * listeners stay, listed in MigrateReport.skipped with how many were taken; new SYNs to them are dropped
   * by the source's network lock meanwhile, and their peers retransmit). Default true.
   */
  backlog?: boolean;
  /** let both daemons lock the network (nftables) around the connections. Default true; false passes no_network_lock to both. */
  networkLock?: boolean;
  /** lease of both sessions in ms (0 or absent: each daemon's default) */
  leaseMs?: number;
  /** how long the hook may run, in ms. Default 30000. */
  hookTimeoutMs?: number;
  /** channel credentials, for both daemons or for each; insecure by default */
  credentials?: grpc.ChannelCredentials | { from?: grpc.ChannelCredentials; to?: grpc.ChannelCredentials };
  /** deadline of each unary call, and how long to wait for a connection to a daemon, in ms (SoccrClient's default: 5000) */
  timeoutMs?: number;
  /** tries of Release on the source once the destination is live (1..10). Default 3. */
  releaseAttempts?: number;
  /** called as each phase starts, completes or fails (exceptions it throws are ignored) */
  onPhase?: (event: PhaseEvent) => void;
  /**
   * Let the source send the frames straight to the destination's data endpoint when the destination
   * advertises one (soccrd --data-listen), under a key minted for this migration. Default true; false
   * relays them through this process, as with a destination that advertises none.
   */
  directData?: boolean;
  /**
   * Source and destination the same daemon (the same address), with a delivery path and no hook: the
   * live sockets themselves are handed to the new owner (the Handoff call), since rebuilt copies could not
   * take the 4-tuples the frozen ones still hold in the same namespace. The daemon checks that the owner
   * is in `netns` (absent: the daemon's own) and refuses before touching anything otherwise; migrate then
   * goes on with checkpoint and restore. The old owner is left stopped, as after a migration. Default
   * true; false always checkpoints and restores.
   */
  handoff?: boolean;
  /** hand-off only: listening sockets too, with the connections waiting in their accept queues */
  listeners?: boolean;
}

export interface PhaseEvent {
  name: MigratePhase;
  status: 'started' | 'completed' | 'failed';
  /** Unix ms */
  startedAt: number;
  /** duration, once completed or failed */
  ms?: number;
  /** why it failed (describeError) */
  error?: string;
  /** checkpoint+restore, once completed: what moved */
  connections?: number;
  queueBytes?: number;
  sourceSessionId?: string;
  destinationSessionId?: string;
  /** hook, once completed or failed */
  hook?: HookResult;
}

export interface PhaseTiming {
  name: MigratePhase;
  /** Unix ms */
  startedAt: number;
  ms: number;
  /** false for a phase that failed (only release-source fails without failing the migration) */
  ok: boolean;
}

export type MigrateAddress = SocketAddress;

/** A connection's addresses as its source host saw them. */
export interface MigrateConnection {
  local: MigrateAddress;
  remote: MigrateAddress;
}

export interface HookResult {
  command: string;
  /** null when killed by a signal */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  ms: number;
  /** what it wrote (the last 256 KiB of each) */
  stdout: string;
  stderr: string;
}

export interface MigrateReport {
  from: string;
  to: string;
  pid: number;
  sourceSessionId: string;
  destinationSessionId: string;
  /** connections moved */
  connections: number;
  /** queue bytes (receive and send queues) moved */
  queueBytes: number;
  /** every connection's addresses, in stream order */
  addresses: MigrateConnection[];
  /** the phases that ran, in order */
  phases: PhaseTiming[];
  totalMs: number;
  /**
   * From just before the Checkpoint call to the completion of the destination's Resume: the time during
   * which the connections could not move data. On failure (MigrateError.report): until the rollback
   * completed.
   */
  freezeMs: number;
  /** the hook's outcome, null without a hook */
  hook: HookResult | null;
  /**
   * how the frames went: 'direct' from daemon to daemon, or 'relay' through the orchestrator; 'handoff':
   * none did, the sockets themselves went to the new owner (freezeMs is then how long no process served
   * them, as the daemon measured it)
   */
  transport: 'direct' | 'relay' | 'handoff';
  /** the hand-off, when transport is 'handoff': its id, and the sockets it left out with why */
  handoff?: { id: string; skipped: Array<{ fd: number; reason: string }> };
  /** the old owner's sockets the checkpoint left with it, with the error kind and why (--all leaves listeners and unsupported states; allowPartial, refusals) */
  skipped: Array<{ fd: number; kind: string; reason: string }>;
  warnings: string[];
}

/** The next frame of a stream not being iterated elsewhere, or undefined at its end, error or timeout. */
function firstFrame<T>(stream: grpc.ClientReadableStream<T>, timeoutMs: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const done = (f: T | undefined): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onEnd);
      stream.pause();
      resolve(f);
    };
    const onData = (f: T): void => done(f);
    const onEnd = (): void => done(undefined);
    const timer = setTimeout(onEnd, timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onEnd);
  });
}

/**
 * A migration that failed before the destination went live, and was rolled back. Its `cause` is the
 * failure itself: a SoccrError (kind, errno, grpcCode) when a daemon refused a call or the stream was
 * found bad here, otherwise the error as raised (a status of grpc-js's own, such as UNAVAILABLE).
 */
export class MigrateError extends Error {
  readonly phase: MigratePhase;
  /** why the phase failed, one line (describeError) */
  readonly reason: string;
  /** what was undone: "aborted destination session rst-1", "resumed source session src-1" */
  readonly rolledBack: string[];
  /** rollback steps that failed, with why */
  readonly rollbackFailures: string[];
  /** the report as far as the migration got */
  readonly report: MigrateReport;

  constructor(phase: MigratePhase, reason: string, rolledBack: string[], rollbackFailures: string[], report: MigrateReport, cause: unknown) {
    let what = rolledBack.length ? rolledBack.join(', ') : 'nothing';
    if (rollbackFailures.length) what += `; rollback failed: ${rollbackFailures.join(', ')}`;
    super(`migrate failed in ${phase}: ${reason} (rolled back: ${what})`);
    this.name = 'MigrateError';
    this.phase = phase;
    this.reason = reason;
    this.rolledBack = rolledBack;
    this.rollbackFailures = rollbackFailures;
    this.report = report;
    (this as { cause?: unknown }).cause = cause;
  }
}

// ---- helpers ------------------------------------------------------------------------------------

const HOOK_OUTPUT_CAP = 256 * 1024;
const CONNECTIONS_ENV_CAP = 96 * 1024;

function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Waits until `p` settles (it never rejects) or `ms` pass, whichever comes first. */
async function settledWithin(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function u32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be an integer in 0..4294967295, not ${v}`);
  return v;
}

/** A failure and the side it came from, so that the reason names it. */
class SideError extends Error {
  constructor(
    readonly side: string,
    readonly inner: unknown,
  ) {
    super(`${side}: ${describeError(inner)}`);
  }
}

function reasonOf(err: unknown): string {
  return err instanceof SideError ? err.message : describeError(err);
}

/** The failure under its side: the SoccrError a daemon sent when one refused, else the error as raised. */
function typedCause(err: unknown): unknown {
  const inner = err instanceof SideError ? err.inner : err;
  return soccrErrorOf(inner) ?? inner;
}

/** Keeps the last `cap` bytes written to it. */
class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private dropped = false;
  constructor(private readonly cap: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.bytes += b.length;
    while (this.bytes - this.chunks[0].length >= this.cap) {
      this.bytes -= (this.chunks.shift() as Buffer).length;
      this.dropped = true;
    }
  }
  toString(): string {
    let b = Buffer.concat(this.chunks);
    if (b.length > this.cap) {
      b = b.subarray(b.length - this.cap);
      this.dropped = true;
    }
    return (this.dropped ? '[...]\n' : '') + b.toString('utf8');
  }
}

/** Runs `command` with sh -c in a process group of its own, killed whole on timeout. */
async function runHook(command: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<HookResult> {
  const t0 = performance.now();
  const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const out = new Tail(HOOK_OUTPUT_CAP);
  const err = new Tail(HOOK_OUTPUT_CAP);
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup('SIGTERM');
    killTimer = setTimeout(() => killGroup('SIGKILL'), 2000);
  }, timeoutMs);
  try {
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, s) => resolve({ code: c, signal: s }));
    });
    // the rest of its output, unless something it started in the background keeps the pipes open
    await Promise.race([closed, sleep(500)]);
    return { command, exitCode: code, signal, timedOut, ms: roundMs(performance.now() - t0), stdout: out.toString(), stderr: err.toString() };
  } finally {
    clearTimeout(timer);
    if (killTimer) clearTimeout(killTimer);
    child.stdout.destroy();
    child.stderr.destroy();
  }
}

function hookFailure(h: HookResult, timeoutMs: number): string | undefined {
  let why: string;
  if (h.timedOut) why = `hook timed out after ${timeoutMs} ms`;
  else if (h.exitCode !== null && h.exitCode !== 0) why = `hook exited with code ${h.exitCode}`;
  else if (h.signal) why = `hook killed by ${h.signal}`;
  else return undefined;
  const last = h.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== '[...]')
    .pop();
  return last ? `${why}: ${last.length > 200 ? `${last.slice(0, 200)}…` : last}` : why;
}

// ---- the migration ------------------------------------------------------------------------------

/**
 * Migrates the connections of `pid` from the daemon at `from` to the daemon at `to` (see the top of
 * this file). Resolves with the report once the destination is live, warnings included (a source that
 * could not be released); rejects with a MigrateError, after rolling back, when a phase failed before;
 * throws a RangeError at once for invalid options.
 */
export async function migrate(opts: MigrateOptions): Promise<MigrateReport> {
  if (!opts.from || !opts.to) throw new RangeError('migrate needs both a source (from) and a destination (to) address');
  u32('pid', opts.pid);
  for (const fd of opts.fds ?? []) u32('fd', fd);
  u32('leaseMs', opts.leaseMs ?? 0);
  const hookTimeoutMs = opts.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  if (!(hookTimeoutMs > 0)) throw new RangeError(`hookTimeoutMs must be positive, not ${hookTimeoutMs}`);
  const releaseAttempts = opts.releaseAttempts ?? DEFAULT_RELEASE_ATTEMPTS;
  if (!Number.isInteger(releaseAttempts) || releaseAttempts < 1 || releaseAttempts > 10)
    throw new RangeError(`releaseAttempts must be 1..10, not ${releaseAttempts}`);

  const creds = opts.credentials;
  const both = creds instanceof grpc.ChannelCredentials ? creds : undefined;
  const each = creds instanceof grpc.ChannelCredentials ? undefined : creds;
  const src = new SoccrClient(opts.from, { credentials: both ?? each?.from, timeoutMs: opts.timeoutMs });
  const dst = new SoccrClient(opts.to, { credentials: both ?? each?.to, timeoutMs: opts.timeoutMs });
  try {
    return await new Migration(opts, src, dst, hookTimeoutMs, releaseAttempts).run();
  } finally {
    src.close();
    dst.close();
  }
}

class PhaseFailure extends Error {
  constructor(
    readonly phase: MigratePhase,
    readonly inner: unknown,
  ) {
    super(reasonOf(inner));
  }
}

class Migration {
  private readonly report: MigrateReport;
  private readonly t0 = performance.now();
  private freezeStart: number | undefined;
  private header: SessionHeaderMsg | undefined;
  /** connection addresses from the connection headers, for streams whose session header has no tuples */
  private readonly headerAddresses: MigrateConnection[] = [];
  private sawStreamEnd = false;
  private sourceSession: string | undefined;
  private destinationSession: string | undefined;
  private destinationLive = false;
  /** performance.now() when a destination Resume was sent whose outcome is not known (no answer from the daemon) */
  private resumeInDoubtSince: number | undefined;
  /** what asking the destination after a failed Resume found (settleDestination) */
  private destinationOutcome: DestinationOutcome | undefined;
  private readonly rolledBack: string[] = [];
  private readonly rollbackFailures: string[] = [];
  private leaseKeeper: LeaseKeeper | undefined;
  /** where the destination takes direct transfers (GetVersion), '' if nowhere */
  private dataEndpoint = '';
  /** the source serves Handoff (GetVersion) */
  private sourceHandsOff = false;

  constructor(
    private readonly opts: MigrateOptions,
    private readonly src: SoccrClient,
    private readonly dst: SoccrClient,
    private readonly hookTimeoutMs: number,
    private readonly releaseAttempts: number,
  ) {
    this.report = {
      from: opts.from,
      to: opts.to,
      pid: opts.pid,
      sourceSessionId: '',
      destinationSessionId: '',
      connections: 0,
      queueBytes: 0,
      addresses: [],
      phases: [],
      totalMs: 0,
      freezeMs: 0,
      hook: null,
      transport: 'relay',
      skipped: [],
      warnings: [],
    };
  }

  async run(): Promise<MigrateReport> {
    try {
      await this.reachBoth();
      if (await this.handedOff()) {
        this.report.totalMs = roundMs(performance.now() - this.t0);
        return this.report;
      }
      await this.phase('checkpoint+restore', () => this.transfer());
      if (this.opts.beforeResume !== undefined) await this.phase('hook', () => this.hook());
      await this.phase('resume-destination', () => this.resumeDestination());
    } catch (err) {
      // A failed hand-off has nothing to roll back here (the daemon gave the owner back itself).
      if (err instanceof MigrateError) throw err;
      throw await this.rollback(err);
    }
    this.report.freezeMs = roundMs(performance.now() - (this.freezeStart as number));
    await this.phase('release-source', () => this.releaseSource()).catch(() => undefined);
    this.report.totalMs = roundMs(performance.now() - this.t0);
    return this.report;
  }

  // -- phases --

  private emit(e: PhaseEvent): void {
    try {
      this.opts.onPhase?.(e);
    } catch (err) {
      this.report.warnings.push(`the onPhase callback threw: ${describeError(err)}`);
    }
  }

  // A phase with nothing to add to its event is an async function returning nothing: void, not undefined.
  // eslint-disable-next-line @typescript-eslint/no-invalid-void-type
  private async phase(name: MigratePhase, fn: () => Promise<Partial<PhaseEvent> | void>): Promise<void> {
    const startedAt = Date.now();
    const t = performance.now();
    this.emit({ name, status: 'started', startedAt });
    try {
      const detail = await fn();
      const ms = roundMs(performance.now() - t);
      this.report.phases.push({ name, startedAt, ms, ok: true });
      this.emit({ name, status: 'completed', startedAt, ms, ...(detail ?? {}) });
    } catch (err) {
      const ms = roundMs(performance.now() - t);
      this.report.phases.push({ name, startedAt, ms, ok: false });
      this.emit({ name, status: 'failed', startedAt, ms, error: reasonOf(err), ...(name === 'hook' && this.report.hook ? { hook: this.report.hook } : {}) });
      throw new PhaseFailure(name, err);
    }
  }

  /**
   * Both channels connected, a first call made on each and the frame codecs generated before anything
   * freezes: connection set-up and first-use costs (about 20 ms each) are not freeze time, and an
   * unreachable daemon fails the migration before it touches anything.
   */
  private async reachBoth(): Promise<void> {
    warmCodecs();
    const reach = (c: SoccrClient, side: string): Promise<GetVersionResponseMsg> =>
      c
        .connect()
        .then(() => c.getVersion())
        .catch((e: unknown) => Promise.reject(new SideError(side, e)));
    const [src, dst] = await Promise.all([reach(this.src, 'source'), reach(this.dst, 'destination')]);
    // Before anything freezes: the destination must read what the source writes (a rolling upgrade of
    // soccrd updates destinations first).
    if (!formatsRead(dst).includes(src.streamFormat)) {
      const why =
        `the destination daemon (soccrd ${dst.version}) reads stream format${formatsRead(dst).length > 1 ? 's' : ''} ${formatsRead(dst).join(', ')}, ` +
        `the source (soccrd ${src.version}) writes ${src.streamFormat}: upgrade the destination first`;
      throw new SideError('destination', new SoccrError('TARGET_STATE', why));
    }
    this.dataEndpoint = dst.dataEndpoint ?? '';
    this.sourceHandsOff = src.features?.handoff === true;
  }

  /**
   * One daemon, one namespace: the sockets themselves go to the new owner (see MigrateOptions.handoff).
   * False when that does not apply, or the daemon found the owner in another namespace (nothing was
   * touched: checkpoint and restore follow). A failed hand-off changed nothing either (the daemon
   * continued the owner, which kept every socket): the MigrateError says so.
   */
  private async handedOff(): Promise<boolean> {
    const o = this.opts;
    const applies =
      o.handoff !== false && this.sourceHandsOff && !!o.deliverUnixPath && o.beforeResume === undefined && normalizeAddress(o.from) === normalizeAddress(o.to);
    if (!applies) return false;
    const startedAt = Date.now();
    const t = performance.now();
    this.emit({ name: 'handoff', status: 'started', startedAt });
    try {
      const fds = o.fds ?? [];
      const r = await this.src.handoff(o.pid, o.deliverUnixPath as string, {
        fds,
        all: fds.length === 0,
        listeners: o.listeners === true && fds.length === 0,
        expectNetns: o.netns ?? '/proc/self/ns/net',
      });
      const ms = roundMs(performance.now() - t);
      this.report.transport = 'handoff';
      this.report.handoff = { id: r.handoffId, skipped: r.skipped.map((x) => ({ fd: x.fd, reason: x.reason })) };
      this.report.connections = r.sockets.length;
      this.report.addresses = r.sockets.map((x) => ({ local: addressFromMsg(x.local), remote: addressFromMsg(x.remote) }));
      this.report.freezeMs = roundMs(r.freezeUs / 1000);
      this.report.phases.push({ name: 'handoff', startedAt, ms, ok: true });
      this.emit({ name: 'handoff', status: 'completed', startedAt, ms, connections: r.sockets.length, queueBytes: 0 });
      return true;
    } catch (err) {
      const ms = roundMs(performance.now() - t);
      if (soccrErrorOf(err)?.kind === 'TARGET_STATE') {
        this.report.warnings.push(`no hand-off (${reasonOf(err)}): checkpoint and restore instead`);
        this.emit({ name: 'handoff', status: 'failed', startedAt, ms, error: reasonOf(err) });
        return false;
      }
      this.report.phases.push({ name: 'handoff', startedAt, ms, ok: false });
      this.report.totalMs = roundMs(performance.now() - this.t0);
      this.emit({ name: 'handoff', status: 'failed', startedAt, ms, error: reasonOf(err) });
      throw new MigrateError(
        'handoff',
        reasonOf(err),
        ['nothing at the source: the old owner keeps every socket (the daemon continued it if it had stopped it)'],
        [],
        this.report,
        typedCause(err),
      );
    }
  }

  /** The source's Checkpoint options, the same for a direct and a relayed transfer. */
  private checkpointOptions(): CheckpointOptions {
    const o = this.opts;
    const fds = o.fds ?? [];
    return {
      fds,
      all: fds.length === 0,
      leaseMs: o.leaseMs,
      noNetworkLock: o.networkLock === false,
      stopOwner: o.stopOwner ?? true,
      allowPartial: o.allowPartial ?? false,
      takeBacklog: fds.length === 0 && o.backlog !== false,
    };
  }

  /** Checkpoint on the source into a held Restore on the destination, directly or relayed. */
  private async transfer(): Promise<Partial<PhaseEvent>> {
    if (this.dataEndpoint && this.opts.directData !== false) await this.transferDirect(this.dataEndpoint);
    else await this.transferRelayed();
    const tuples = this.header?.tuples ?? [];
    this.report.skipped = (this.header?.skipped ?? []).map((x) => ({ fd: x.fd, kind: x.kind, reason: x.reason }));
    this.report.addresses =
      tuples.length > 0 ? tuples.map((t) => ({ local: addressFromMsg(t.local), remote: addressFromMsg(t.remote) })) : this.headerAddresses;
    return {
      connections: this.report.connections,
      queueBytes: this.report.queueBytes,
      sourceSessionId: this.report.sourceSessionId,
      destinationSessionId: this.report.destinationSessionId,
    };
  }

  /**
   * The source writes the frames straight to the destination's data endpoint, sealed under a key minted
   * here and given to both over their gRPC channels; the Checkpoint stream brings the session header
   * (for a rollback) and the stream end, the Restore's answer what was rebuilt.
   */
  private async transferDirect(endpoint: string): Promise<void> {
    const o = this.opts;
    const noNetworkLock = o.networkLock === false;
    const transfer = { transferId: randomBytes(TRANSFER_ID_BYTES), key: randomBytes(DATA_KEY_BYTES) };
    this.report.transport = 'direct';
    this.freezeStart = performance.now();
    const cancelRestore = new AbortController();
    // The Restore first, so that the destination awaits the transfer when the source connects.
    const restored = this.dst.restore(
      {
        netns: o.netns ?? '',
        deliverUnixPath: o.deliverUnixPath ?? '',
        goLive: false,
        transparent: true,
        leaseMs: o.leaseMs ?? 0,
        noNetworkLock,
        dataTransfer: transfer,
      },
      [],
      cancelRestore.signal,
    );
    const cp = this.src.checkpoint(o.pid, { ...this.checkpointOptions(), dataTransfer: { ...transfer, endpoint } });
    let sourceError: unknown;
    let sourceDone = false;
    // Whichever side fails first ends the other's call.
    const streamed = (async (): Promise<void> => {
      for await (const f of cp as AsyncIterable<FrameMsg>) for (const x of unpackFrames(f)) this.observe(x);
      if (!this.sawStreamEnd) throw new SoccrError('INVALID_STATE', 'the checkpoint stream ended without its end frame');
      sourceDone = true;
    })().catch((err: unknown) => {
      sourceError ??= err;
      cancelRestore.abort();
    });
    let info: SessionInfoMsg;
    try {
      info = await restored;
    } catch (err) {
      const sourceFirst = sourceError !== undefined;
      // The source ends by itself once the destination closed the data connection, after its session
      // header (which tells the rollback what to resume) if it froze anything.
      if (!sourceFirst) await settledWithin(streamed, 5000);
      cp.cancel();
      throw sourceFirst ? new SideError('source Checkpoint', sourceError) : new SideError('destination Restore', err);
    }
    this.destinationSession = info.sessionId;
    this.report.destinationSessionId = info.sessionId;
    // The destination answers once it has the stream end; the source's own end follows at once.
    if (!sourceDone) await settledWithin(streamed, 2000);
    if (sourceError !== undefined) throw new SideError('source Checkpoint', sourceError);
    if (!sourceDone) {
      cp.cancel();
      throw new SideError(
        'destination Restore',
        new SoccrError('INVALID_STATE', `answered (session ${info.sessionId}) before the source's checkpoint stream was complete`),
      );
    }
    expectHeld(info);
    // Of the whole session: its connections list is one page only.
    this.report.connections = info.connectionCount;
    this.report.queueBytes = info.queueBytes;
  }

  /** Checkpoint on the source piped into a held Restore on the destination, through this process. */
  private async transferRelayed(): Promise<void> {
    const o = this.opts;
    const noNetworkLock = o.networkLock === false;
    this.freezeStart = performance.now();
    // Frames pass from one daemon to the other still encoded: only the small ones are decoded here.
    const cp = this.src.checkpointEncoded(o.pid, this.checkpointOptions());
    // grpc-js ends the stream, then emits its error (and then its status): keep both whenever they come
    let sourceError: Error | undefined;
    let cancelledHere = false;
    cp.on('error', (err: Error) => {
      if (!cancelledHere) sourceError ??= err;
    });
    const status = new Promise<grpc.StatusObject>((resolve) => cp.once('status', resolve));
    let complete = false;
    let relayDone: () => void = () => undefined;
    const relaySettled = new Promise<void>((resolve) => (relayDone = resolve));
    const observe = (f: Buffer): void => this.observeEncoded(f);
    const sawEnd = (): boolean => this.sawStreamEnd;
    async function* relay(): AsyncGenerator<Buffer> {
      try {
        for await (const f of cp as AsyncIterable<Buffer>) {
          observe(f);
          yield f;
        }
        const st = await status;
        if (st.code !== grpc.status.OK) throw sourceError ?? Object.assign(new Error(st.details), st);
        if (!sawEnd()) throw new SoccrError('INVALID_STATE', 'the checkpoint stream ended without its end frame');
        complete = true;
      } catch (err) {
        if (!cancelledHere) sourceError ??= err instanceof Error ? err : new Error(String(err));
        throw sourceError ?? err;
      } finally {
        // the destination stopped reading, or the stream broke: the source call ends here either way
        if (!complete) {
          cancelledHere = true;
          cp.cancel();
        }
        relayDone();
      }
    }

    let info: SessionInfoMsg;
    try {
      info = await this.dst.restore(
        { netns: o.netns ?? '', deliverUnixPath: o.deliverUnixPath ?? '', goLive: false, transparent: true, leaseMs: o.leaseMs ?? 0, noNetworkLock },
        relay(),
      );
    } catch (err) {
      const fromSource = sourceError !== undefined && err === sourceError;
      // The source may have frozen and streamed everything before the destination failed: learn its
      // session from the header (buffered, or about to arrive) so that the rollback can resume it.
      if (!this.header) {
        const first = await firstFrame(cp, 5000);
        if (first) this.observeEncoded(first);
      }
      cancelledHere = true;
      cp.cancel();
      throw fromSource ? new SideError('source Checkpoint', err) : new SideError('destination Restore', err);
    }
    this.destinationSession = info.sessionId;
    this.report.destinationSessionId = info.sessionId;
    // A destination that answers before its input ended leaves the relay finishing the source's stream
    // (its status follows the end frame at once): give it a moment.
    if (!complete) await settledWithin(relaySettled, 2000);
    if (!complete) {
      cancelledHere = true;
      cp.cancel();
      throw new SideError(
        'destination Restore',
        new SoccrError('INVALID_STATE', `answered (session ${info.sessionId}) before the checkpoint stream was complete`),
      );
    }
    expectHeld(info);
  }

  /** Follows the frames as they pass (nothing of the queues is kept). */
  /**
   * observe() for an encoded message (a frame or a batch of frames): queue chunks are not decoded, the
   * connection headers give the queue bytes instead.
   */
  private observeEncoded(b: Buffer): void {
    if (encodedFrameKind(b) === 'chunk') return;
    let f: FrameMsg;
    try {
      f = decodeFrame(b);
    } catch {
      return; // the destination refuses what does not decode, and says why
    }
    let frames: FrameMsg[];
    try {
      frames = unpackFrames(f);
    } catch {
      return; // the destination refuses a malformed batch, and says why
    }
    for (const x of frames) {
      if (frameKind(x) === 'connection') {
        const st = (x.connection?.state ?? {}) as { inqLen?: number; outqLen?: number };
        this.report.queueBytes += (st.inqLen ?? 0) + (st.outqLen ?? 0);
      }
      this.observe(x);
    }
  }

  private observe(f: FrameMsg): void {
    switch (frameKind(f)) {
      case 'session': {
        const h = f.session as SessionHeaderMsg;
        this.header = h;
        this.sourceSession = h.sessionId;
        this.report.sourceSessionId = h.sessionId;
        break;
      }
      case 'connection': {
        const st = (f.connection?.state ?? {}) as { local?: AddressMsg | null; remote?: AddressMsg | null };
        this.headerAddresses.push({ local: addressFromMsg(st.local), remote: addressFromMsg(st.remote) });
        break;
      }
      case 'end':
        this.report.connections++;
        break;
      case 'streamEnd':
        this.sawStreamEnd = true;
        break;
      default:
        break;
    }
  }

  private async hook(): Promise<Partial<PhaseEvent>> {
    const o = this.opts;
    const json = JSON.stringify(this.report.addresses);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'soccr-migrate-'));
    const file = path.join(dir, 'connections.json');
    writeFileSync(file, json, { mode: 0o600 });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SOCCR_SOURCE_SESSION: this.report.sourceSessionId,
      SOCCR_DEST_SESSION: this.report.destinationSessionId,
      SOCCR_PID: String(o.pid),
      SOCCR_FROM: o.from,
      SOCCR_TO: o.to,
      SOCCR_CONNECTIONS_FILE: file,
    };
    if (Buffer.byteLength(json) <= CONNECTIONS_ENV_CAP) env.SOCCR_CONNECTIONS = json;
    else {
      delete env.SOCCR_CONNECTIONS;
      this.report.warnings.push(`SOCCR_CONNECTIONS left out of the hook's environment (${Buffer.byteLength(json)} bytes): read SOCCR_CONNECTIONS_FILE`);
    }
    this.leaseKeeper = new LeaseKeeper(
      [
        { side: 'source', client: this.src, sessionId: this.report.sourceSessionId },
        { side: 'destination', client: this.dst, sessionId: this.report.destinationSessionId },
      ],
      this.renewIntervalMs(),
    );
    try {
      const h = await runHook(o.beforeResume as string, env, this.hookTimeoutMs);
      this.report.hook = h;
      const failed = hookFailure(h, this.hookTimeoutMs);
      if (failed) throw new Error(failed);
      return { hook: h };
    } finally {
      this.leaseKeeper.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Renewals during the hook: a quarter of the shortest lease, between 100 ms and 5 s. */
  private renewIntervalMs(): number {
    let lease = this.opts.leaseMs ?? 0;
    if (!lease && this.header && this.header.leaseExpiresUnixMs > this.header.createdUnixMs) lease = this.header.leaseExpiresUnixMs - this.header.createdUnixMs;
    if (!lease) return 1000;
    return Math.min(5000, Math.max(100, Math.floor(lease / 4)));
  }

  private async resumeDestination(): Promise<void> {
    const lost = this.leaseKeeper?.lost;
    if (lost) throw new SoccrError('SESSION_STATE', lost);
    const id = this.report.destinationSessionId;
    const sentAt = performance.now();
    let info: SessionInfoMsg;
    try {
      info = await this.dst.resume(id);
    } catch (err) {
      // Without the daemon's own answer the hand-over may have gone live, or may still be running
      // (unless the call never left: no connection to send it on).
      if (!daemonAnswered(err) && !neverSent(err)) this.resumeInDoubtSince = sentAt;
      // Either way the destination says what became of the session; it is ended there unless live.
      this.destinationOutcome = await this.settleDestination(id);
      if (this.destinationOutcome.state !== 'live') throw new SideError('destination Resume', err);
      this.report.warnings.push(`Resume on the destination reported ${describeError(err)}, but session ${id} is RESUMED: went on`);
      info = this.destinationOutcome.info;
    }
    if (info.state !== SessionState.RESUMED)
      throw new SideError('destination Resume', new SoccrError('SESSION_STATE', `session ${id} is ${sessionStateName(info.state)} after Resume`));
    this.destinationLive = true;
  }

  /** Release on the source, tried up to releaseAttempts times; a failure is a warning, never a rollback. */
  private async releaseSource(): Promise<void> {
    const id = this.report.sourceSessionId;
    let firstError: unknown;
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.releaseAttempts; attempt++) {
      try {
        const info = await this.src.release(id);
        if (info.state !== SessionState.RELEASED) {
          lastError = new SoccrError('SESSION_STATE', `session ${id} is ${sessionStateName(info.state)} after Release`);
          break;
        }
        if (attempt > 1) this.report.warnings.push(`Release of source session ${id} took ${attempt} attempts (first failure: ${describeError(firstError)})`);
        return;
      } catch (err) {
        firstError ??= err;
        lastError = err;
        const s = await this.src.getSession(id).catch(() => undefined);
        if (s?.state === SessionState.RELEASED) {
          this.report.warnings.push(`Release of source session ${id} reported ${describeError(err)}, but the session is RELEASED`);
          return;
        }
        if (s && s.state !== SessionState.FROZEN) {
          lastError = new SoccrError(
            'SESSION_STATE',
            `session ${id} is ${sessionStateName(s.state)}${s.reason ? ` (${s.reason})` : ''} (${describeError(err)})`,
          );
          break;
        }
        if (isServiceError(err) && err.code === grpc.status.NOT_FOUND) break;
        if (attempt < this.releaseAttempts) await sleep(200 * 2 ** (attempt - 1));
      }
    }
    this.report.warnings.push(
      `Release of source session ${id} on ${this.opts.from} failed: ${describeError(lastError)}. The destination is live, so nothing was rolled back; ` +
        `release the source session by hand (soccrctl --daemon ${this.opts.from} release ${id}) before its lease ends, or its sockets resume at the source too`,
    );
    throw lastError;
  }

  // -- rollback --

  private async rollback(err: unknown): Promise<MigrateError> {
    const phase = err instanceof PhaseFailure ? err.phase : 'checkpoint+restore';
    const inner = err instanceof PhaseFailure ? err.inner : err;
    this.leaseKeeper?.stop();
    const rolledBack = this.rolledBack;
    const failures = this.rollbackFailures;
    const dstId = this.destinationSession;
    let destination = this.destinationOutcome;
    if (dstId && !this.destinationLive && !destination) destination = await this.settleDestination(dstId);
    const srcId = this.sourceSession;
    if (destination?.state === 'unreachable') {
      failures.push(`destination session ${dstId ?? ''} did not answer for as long as its hand-over could last: taken as not live`);
    }
    if (srcId && destination?.state === 'live') {
      // Resuming the source while the destination is live would run the connections twice.
      failures.push(`source session ${srcId} left frozen: destination session ${dstId ?? ''} is live; release the source`);
    } else if (srcId) {
      await this.undo('source session', this.src, srcId, () => this.src.resume(srcId), [SessionState.RESUMED, SessionState.EXPIRED], 'resumed source session');
    }
    if (this.freezeStart !== undefined) this.report.freezeMs = roundMs(performance.now() - this.freezeStart);
    this.report.totalMs = roundMs(performance.now() - this.t0);
    return new MigrateError(phase, reasonOf(inner), rolledBack, failures, this.report, typedCause(inner));
  }

  /** A rollback step, tried up to three times; a step found already done (by its session's state) counts as done. */
  private async undo(
    what: string,
    client: SoccrClient,
    id: string,
    call: () => Promise<SessionInfoMsg>,
    doneStates: SessionState[],
    done: string,
  ): Promise<void> {
    let last: unknown;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await call();
        this.rolledBack.push(`${done} ${id}`);
        return;
      } catch (e) {
        last = e;
        const s = await client.getSession(id).catch(() => undefined);
        if (s && doneStates.includes(s.state)) {
          this.rolledBack.push(`${what} ${id} already ${sessionStateName(s.state)}`);
          return;
        }
        if (isServiceError(e) && (e.code === grpc.status.NOT_FOUND || e.code === grpc.status.FAILED_PRECONDITION)) break;
        if (attempt < 3) await sleep(200 * attempt);
      }
    }
    this.rollbackFailures.push(`${what} ${id}: ${describeError(last)}`);
  }

  /**
   * Ends the destination session unless it went live, and says which: Abort, and whenever that fails,
   * GetSession. While the daemon says a hand-over is in flight (SESSION_BUSY), or while a Resume whose
   * outcome is unknown could still be handing over (RESUME_DEADLINE_MS from when it was sent), it asks
   * again; otherwise it tries three times. 'held': not live, and no hand-over can make it live any more
   * (its lease closes it). 'unreachable': no answer since a Resume whose outcome is unknown.
   */
  private async settleDestination(id: string): Promise<DestinationOutcome> {
    const started = performance.now();
    const inDoubtUntil = this.resumeInDoubtSince === undefined ? 0 : this.resumeInDoubtSince + RESUME_DEADLINE_MS;
    const busyUntil = started + RESUME_DEADLINE_MS;
    let last: unknown;
    /** seen not live once no hand-over of a Resume in doubt could still run */
    let heldForGood = this.resumeInDoubtSince === undefined;
    for (let attempt = 1; ;) {
      try {
        const info = await this.dst.abort(id);
        this.rolledBack.push(`aborted destination session ${id}`);
        return { state: 'ended', info };
      } catch (e) {
        last = e;
      }
      const s = await this.dst.getSession(id).catch(() => undefined);
      const now = performance.now();
      if (s && now >= inDoubtUntil) heldForGood = true;
      if (s?.state === SessionState.RESUMED) return { state: 'live', info: s };
      if (s && (s.state === SessionState.ABORTED || s.state === SessionState.EXPIRED)) {
        this.rolledBack.push(`destination session ${id} already ${sessionStateName(s.state)}`);
        return { state: 'ended', info: s };
      }
      const busy = soccrErrorOf(last)?.kind === 'SESSION_BUSY';
      if ((busy && now < busyUntil) || now < inDoubtUntil) {
        await sleep(SETTLE_POLL_MS);
        continue;
      }
      if (!busy && isServiceError(last) && (last.code === grpc.status.NOT_FOUND || last.code === grpc.status.FAILED_PRECONDITION)) break;
      if (attempt++ >= 3) break;
      await sleep(200 * (attempt - 1));
    }
    this.rollbackFailures.push(`destination session ${id}: ${describeError(last)}`);
    return heldForGood ? { state: 'held' } : { state: 'unreachable' };
  }
}

/** What became of the destination session when the migration could not complete as planned. */
type DestinationOutcome = { state: 'live'; info: SessionInfoMsg } | { state: 'ended'; info: SessionInfoMsg } | { state: 'held' } | { state: 'unreachable' };

/** Interval between two questions to a destination whose hand-over is in flight. */
const SETTLE_POLL_MS = 250;

/** Whether a failed call was answered by the daemon (its errors carry `soccr-kind`): its outcome is known. */
function daemonAnswered(err: unknown): boolean {
  return isServiceError(err) && statusTrailers(err).kind !== undefined;
}

/** Whether a failed call never left this process: grpc-js had no connection to the daemon to send it on. */
function neverSent(err: unknown): boolean {
  return isServiceError(err) && err.code === grpc.status.UNAVAILABLE && err.details.startsWith('No connection established');
}

/** Renews sessions' leases on an interval; notes a session that is gone or no longer waiting. */
class LeaseKeeper {
  /** why a session can no longer be migrated, once a renewal showed it */
  lost: string | undefined;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly sessions: Array<{ side: string; client: SoccrClient; sessionId: string }>,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.renew(), intervalMs);
  }

  private renew(): void {
    for (const s of this.sessions) {
      s.client.renewLease(s.sessionId).then(
        (info) => {
          if (this.stopped || this.lost) return;
          if (info.state !== SessionState.FROZEN && info.state !== SessionState.HELD) {
            this.lost = `${s.side} session ${s.sessionId} is ${sessionStateName(info.state)}${info.reason ? ` (${info.reason})` : ''}`;
          }
        },
        (err: unknown) => {
          if (this.stopped || this.lost) return;
          if (isServiceError(err) && err.code === grpc.status.NOT_FOUND) this.lost = `${s.side} session ${s.sessionId} is gone (${describeError(err)})`;
          // other failures: the next renewal may work, and the lease has some time left
        },
      );
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}

/** The destination's Restore answer must leave its session HELD (nothing live before Resume). */
function expectHeld(info: SessionInfoMsg): void {
  if (info.state !== SessionState.HELD) {
    throw new SideError('destination Restore', new SoccrError('SESSION_STATE', `session ${info.sessionId} is ${sessionStateName(info.state)}, expected HELD`));
  }
}
