// Typed refusals and failures of the engine. Each carries a kind that callers (the gRPC layer) map to a
// status code, and the errno name where a kernel call was the cause.
import { constants as osConstants } from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}

/** A failed libc call: the call's name, errno and its symbolic name (EPERM, EBADF, ...). */
export class SyscallError extends Error {
  readonly call: string;
  readonly errno: number;
  readonly code: string;
  constructor(call: string, errno: number, context?: string) {
    const code = errnoNames.get(errno) ?? `E${errno}`;
    super(`${call}${context ? ` (${context})` : ''} failed: ${code}`);
    this.name = 'SyscallError';
    this.call = call;
    this.errno = errno;
    this.code = code;
  }
}

export type ErrorKind =
  | 'NO_SUCH_PROCESS' // the pid does not exist
  | 'NO_SUCH_FD' // the fd is not open in that process
  | 'NOT_A_SOCKET' // the fd is open but is not a socket
  | 'NOT_TCP' // a socket, but not a TCP stream socket
  | 'LISTENING' // a listening socket: nothing to migrate
  | 'UNSUPPORTED_STATE' // a TCP state the engine cannot checkpoint or restore
  | 'CANNOT_CARRY' // a TCP socket whose state lives partly outside what repair mode saves (kernel TLS or another upper-layer protocol, TCP-MD5 or TCP-AO keys, MPTCP)
  | 'PERMISSION' // the kernel refused for lack of privilege (EPERM/EACCES)
  | 'INVALID_STATE' // a saved state that is malformed or inconsistent
  | 'QUEUE_MISMATCH' // the kernel's queue contents disagree with its reported lengths
  | 'DATA_LOSS' // a checkpoint stream or file whose checksums do not match
  | 'BAD_REQUEST' // a call whose arguments make no sense
  | 'NO_SUCH_SESSION' // an unknown session id
  | 'SESSION_STATE' // the session is not in a state that allows the call
  | 'SESSION_BUSY' // another call in flight uses the session's sockets (a Checkpoint stream, a hand-over): ask again once it ended
  | 'LIMIT' // a configured limit would be exceeded (or the kernel's: no fd, no memory)
  | 'TARGET_STATE' // the target namespace cannot take a connection as saved: its local address is not there or in use, no route to its peer, a congestion control missing
  | 'DELIVERY' // the new owner's Unix socket could not take the connections
  | 'LOCK_TABLE_TAKEN' // a table of the network lock's name exists in a namespace and is not this daemon's (netlock.ts): it is left untouched
  | 'DATA_PATH' // a direct data connection between daemons could not be made, did not come, or broke
  | 'UNAUTHENTICATED' // the caller has no identity the daemon can check
  | 'FORBIDDEN' // the caller, or what it asks for, is outside what the operator allowed
  | 'KERNEL'; // any other failed kernel call

export class SoccrError extends Error {
  readonly kind: ErrorKind;
  /** Symbolic errno (EPERM, EBADF, ...) when a kernel call caused this error. */
  readonly errno?: string;
  /** The gRPC status code of the failed call, when a client rebuilt this error from it (protocol/error-status.ts). */
  readonly grpcCode?: number;
  /** The session the error is about, where known (the daemon sends it in the error's ErrorInfo). */
  session?: string;
  /** The connection (its id within its session) the error is about, where known. */
  connection?: string;
  /**
   * `received`: the errno name, status code, session and connection a client read from a failed call
   * (soccrErrorFromStatus).
   */
  constructor(kind: ErrorKind, message: string, cause?: unknown, received?: { errno?: string; grpcCode?: number; session?: string; connection?: string }) {
    super(message);
    this.name = 'SoccrError';
    this.kind = kind;
    if (cause instanceof SyscallError) this.errno = cause.code;
    if (received?.errno !== undefined) this.errno = received.errno;
    if (received?.grpcCode !== undefined) this.grpcCode = received.grpcCode;
    if (received?.session !== undefined) this.session = received.session;
    if (received?.connection !== undefined) this.connection = received.connection;
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

/** The message of anything thrown: an Error's own message, anything else as a string. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** errnos that say a resource ran out (descriptors, memory), not that the call was wrong */
const EXHAUSTED = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'ENOBUFS']);

/** Wraps a failed kernel call: privilege errors become PERMISSION, exhausted resources LIMIT, the rest KERNEL. */
export function kernelError(what: string, err: unknown): SoccrError {
  if (err instanceof SoccrError) return err;
  if (err instanceof SyscallError) {
    const kind: ErrorKind = err.code === 'EPERM' || err.code === 'EACCES' ? 'PERMISSION' : EXHAUSTED.has(err.code) ? 'LIMIT' : 'KERNEL';
    return new SoccrError(kind, `${what}: ${err.message}`, err);
  }
  return new SoccrError('KERNEL', `${what}: ${errorMessage(err)}`, err);
}
