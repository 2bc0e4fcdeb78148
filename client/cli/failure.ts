// How soccrctl fails: the exit code (by gRPC status, as grpcurl does: 64 + code), the one line on
// stderr, and under --json the `error` member of the one JSON document on stdout. Every command fails
// through here (main in soccrctl.ts), so scripts can rely on the table below for all of them.
import * as grpc from '@grpc/grpc-js';
import { CommanderError } from 'commander';
import { STATUS_BY_KIND, soccrErrorOf, statusTrailers } from '../../protocol/error-status';
import { describeError, isServiceError } from '../client';

export const EXIT_OK = 0;
/** A failure that carries no gRPC status: a local file that cannot be read or written, a hook that failed. */
export const EXIT_FAILURE = 1;
/** The command line itself: an unknown command or option, a missing or malformed argument. Nothing was sent. */
export const EXIT_USAGE = 2;
/** A failure with gRPC status `code` exits with EXIT_STATUS_BASE + code (grpcurl's convention). */
export const EXIT_STATUS_BASE = 64;

/** The exit code of a failure with this gRPC status code. */
export function exitCodeOfStatus(code: number): number {
  return EXIT_STATUS_BASE + code;
}

/**
 * A failure a command explains itself: its line for stderr (without "soccrctl: "), the error underneath
 * (which decides the status and exit code), what the command's JSON document held so far, and fields
 * of its own for the `error` member (migrate's phase and rollback).
 */
export class CliFailure extends Error {
  readonly document?: Record<string, unknown>;
  readonly errorFields?: Record<string, unknown>;
  constructor(message: string, opts: { cause?: unknown; document?: Record<string, unknown>; errorFields?: Record<string, unknown> } = {}) {
    super(message);
    this.name = 'CliFailure';
    if (opts.cause !== undefined) (this as { cause?: unknown }).cause = opts.cause;
    this.document = opts.document;
    this.errorFields = opts.errorFields;
  }
}

/** The `error` member of --json output; fields that do not apply are null, so every failure has the same shape. */
export interface ErrorReport {
  /** the process's exit code */
  exitCode: number;
  /** the gRPC status code, null when the failure has none (usage, a local file) */
  code: number | null;
  /** its name: NOT_FOUND, UNAVAILABLE, ... */
  status: string | null;
  /** the daemon's error kind (NO_SUCH_PROCESS, SESSION_BUSY, ...; see `SoccrError.kind`), or USAGE */
  kind: string | null;
  /** the errno name (ESRCH, EPERM, ENOENT, ...) when a system call was the cause */
  errno: string | null;
  /** the one line also written on stderr, without "soccrctl: " */
  message: string;
}

/** The status, kind and errno a failure carries: its own, or the first found down its cause chain. */
function statusOf(err: unknown): Pick<ErrorReport, 'code' | 'kind' | 'errno'> {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e !== undefined && e !== null; depth++) {
    const typed = soccrErrorOf(e);
    if (typed) return { code: typed.grpcCode ?? STATUS_BY_KIND[typed.kind], kind: typed.kind, errno: typed.errno ?? null };
    if (isServiceError(e)) {
      // a kind this client does not know (a newer daemon's) is still worth reporting
      const t = statusTrailers(e);
      return { code: e.code, kind: t.kind ?? null, errno: t.errno ?? null };
    }
    const errno = (e as { code?: unknown }).code;
    // a Node system error (fs, net): no status, but its errno is worth a field
    if (e instanceof Error && typeof errno === 'string' && /^E[A-Z0-9]+$/.test(errno)) return { code: null, kind: null, errno };
    e = (e as { cause?: unknown }).cause;
  }
  return { code: null, kind: null, errno: null };
}

/** Anything a command threw, as its report: exit code, status, kind, errno and the one line. */
export function errorReport(err: unknown): ErrorReport {
  if (err instanceof CommanderError) {
    // commander's own messages start "error: "; a parser's InvalidArgumentError thrown from an action does not
    const message = err.code === 'commander.help' ? 'a command is required' : err.message.replace(/^error: /, '').trim();
    return { exitCode: EXIT_USAGE, code: null, status: null, kind: 'USAGE', errno: null, message };
  }
  const { code, kind, errno } = statusOf(err);
  const message = err instanceof CliFailure ? oneLine(err.message) : describeError(err);
  return {
    exitCode: code === null ? EXIT_FAILURE : exitCodeOfStatus(code),
    code,
    status: code === null ? null : ((grpc.status as Record<number, string | undefined>)[code] ?? `STATUS_${code}`),
    kind,
    errno,
    message,
  };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** Did the command line ask for --json (before any `--`)? Known even when parsing it failed. */
export function wantsJson(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--json') return true;
  }
  return false;
}

/** The table `soccrctl --help` and the README show. */
export function exitCodesHelp(): string {
  const rows: Array<[string, string]> = [
    [String(EXIT_OK), 'success'],
    [String(EXIT_FAILURE), 'a failure with no gRPC status (a local file, a failed --before-resume hook)'],
    [String(EXIT_USAGE), 'usage: unknown command or option, bad argument (nothing was sent)'],
  ];
  for (let code = 1; code <= 16; code++) rows.push([String(exitCodeOfStatus(code)), `gRPC status ${(grpc.status as Record<number, string>)[code]}`]);
  return [
    'Exit codes (64 + the gRPC status code, as grpcurl; the same for a refusal found locally, e.g. a',
    'checkpoint file that does not verify):',
    ...rows.map(([c, what]) => `  ${c.padStart(2)}  ${what}`),
    'With --json a failure also prints one JSON document on stdout whose "error" member has exitCode,',
    'code, status, kind, errno and message (null where they do not apply).',
  ].join('\n');
}
