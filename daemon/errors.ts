// Typed refusals and failures of the engine. Each carries a kind that callers (the gRPC layer) map to a
// status code, and the errno name where a kernel call was the cause.
import { SyscallError } from './native';

export type ErrorKind =
  | 'NO_SUCH_PROCESS' // the pid does not exist
  | 'NO_SUCH_FD' // the fd is not open in that process
  | 'NOT_A_SOCKET' // the fd is open but is not a socket
  | 'NOT_TCP' // a socket, but not a TCP stream socket
  | 'LISTENING' // a listening socket: nothing to migrate
  | 'UNSUPPORTED_STATE' // a TCP state the engine cannot checkpoint or restore
  | 'PERMISSION' // the kernel refused for lack of privilege (EPERM/EACCES)
  | 'INVALID_STATE' // a saved state that is malformed or inconsistent
  | 'QUEUE_MISMATCH' // the kernel's queue contents disagree with its reported lengths
  | 'KERNEL'; // any other failed kernel call

export class SoccrError extends Error {
  readonly kind: ErrorKind;
  /** Symbolic errno (EPERM, EBADF, ...) when a kernel call caused this error. */
  readonly errno?: string;
  constructor(kind: ErrorKind, message: string, cause?: unknown) {
    super(message);
    this.name = 'SoccrError';
    this.kind = kind;
    if (cause instanceof SyscallError) this.errno = cause.code;
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

/** Wraps a failed kernel call: privilege errors become PERMISSION, the rest KERNEL. */
export function kernelError(what: string, err: unknown): SoccrError {
  if (err instanceof SoccrError) return err;
  if (err instanceof SyscallError) {
    const kind: ErrorKind = err.code === 'EPERM' || err.code === 'EACCES' ? 'PERMISSION' : 'KERNEL';
    return new SoccrError(kind, `${what}: ${err.message}`, err);
  }
  return new SoccrError('KERNEL', `${what}: ${err instanceof Error ? err.message : String(err)}`, err);
}
