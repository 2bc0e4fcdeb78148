// Errors on the wire, both ways: the daemon turns a SoccrError into a gRPC status carrying its kind and
// errno in the `soccr-kind` / `soccr-errno` trailers (errorStatus); a client turns such a status back into
// a SoccrError (soccrErrorFromStatus). The kind -> status code table is complete at compile time.
import * as grpc from '@grpc/grpc-js';
import { ErrorKind, SoccrError, SyscallError, errorMessage } from './errors';

/** The trailer naming the daemon's error kind: present on every error status the daemon itself sends. */
export const KIND_TRAILER = 'soccr-kind';
/** The trailer naming the errno (EPERM, ESRCH, ...) when a kernel call caused the error. */
export const ERRNO_TRAILER = 'soccr-errno';

export const STATUS_BY_KIND: Readonly<Record<ErrorKind, grpc.status>> = {
  NO_SUCH_PROCESS: grpc.status.NOT_FOUND,
  NO_SUCH_FD: grpc.status.NOT_FOUND,
  NOT_A_SOCKET: grpc.status.INVALID_ARGUMENT,
  NOT_TCP: grpc.status.INVALID_ARGUMENT,
  LISTENING: grpc.status.FAILED_PRECONDITION,
  UNSUPPORTED_STATE: grpc.status.FAILED_PRECONDITION,
  CANNOT_CARRY: grpc.status.FAILED_PRECONDITION,
  PERMISSION: grpc.status.PERMISSION_DENIED,
  INVALID_STATE: grpc.status.INVALID_ARGUMENT,
  QUEUE_MISMATCH: grpc.status.ABORTED,
  DATA_LOSS: grpc.status.DATA_LOSS,
  BAD_REQUEST: grpc.status.INVALID_ARGUMENT,
  NO_SUCH_SESSION: grpc.status.NOT_FOUND,
  SESSION_STATE: grpc.status.FAILED_PRECONDITION,
  SESSION_BUSY: grpc.status.FAILED_PRECONDITION,
  LIMIT: grpc.status.RESOURCE_EXHAUSTED,
  TARGET_STATE: grpc.status.FAILED_PRECONDITION,
  DELIVERY: grpc.status.UNAVAILABLE,
  LOCK_TABLE_TAKEN: grpc.status.FAILED_PRECONDITION,
  DATA_PATH: grpc.status.UNAVAILABLE,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  FORBIDDEN: grpc.status.PERMISSION_DENIED,
  KERNEL: grpc.status.INTERNAL,
};

export function isErrorKind(s: string): s is ErrorKind {
  return Object.prototype.hasOwnProperty.call(STATUS_BY_KIND, s);
}

/** The daemon's side: any error as a gRPC status carrying the daemon's kind and the errno name. */
export function errorStatus(err: unknown): Pick<grpc.StatusObject, 'code' | 'details' | 'metadata'> {
  const metadata = new grpc.Metadata();
  if (err instanceof SoccrError) {
    metadata.set(KIND_TRAILER, err.kind);
    if (err.errno) metadata.set(ERRNO_TRAILER, err.errno);
    return { code: STATUS_BY_KIND[err.kind], details: err.message, metadata };
  }
  if (err instanceof SyscallError) {
    metadata.set(KIND_TRAILER, 'KERNEL');
    metadata.set(ERRNO_TRAILER, err.code);
    const code = err.code === 'EPERM' || err.code === 'EACCES' ? grpc.status.PERMISSION_DENIED : grpc.status.INTERNAL;
    return { code, details: err.message, metadata };
  }
  return { code: grpc.status.INTERNAL, details: errorMessage(err), metadata };
}

/** A failed call as grpc-js rejects it: a status code, its details and the trailers. */
export function isServiceError(err: unknown): err is grpc.ServiceError {
  return (
    err instanceof Error &&
    typeof (err as Partial<grpc.ServiceError>).code === 'number' &&
    typeof (err as Partial<grpc.ServiceError>).details === 'string' &&
    (err as Partial<grpc.ServiceError>).metadata instanceof grpc.Metadata
  );
}

/** The `soccr-kind` and `soccr-errno` trailers of a failed call, each absent when not sent. */
export function statusTrailers(err: grpc.ServiceError): { kind?: string; errno?: string } {
  const read = (key: string): string | undefined => {
    const v = err.metadata.get(key)[0];
    return v === undefined ? undefined : String(v);
  };
  return { kind: read(KIND_TRAILER), errno: read(ERRNO_TRAILER) };
}

/**
 * The client's side: the SoccrError the daemon sent: its kind, errno and message (the status details),
 * the status code as grpcCode and the ServiceError as cause. Undefined when the daemon did not answer (no
 * `soccr-kind`: grpc-js's own UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED) or sent a kind this client does
 * not know (a newer daemon).
 */
export function soccrErrorFromStatus(err: grpc.ServiceError): SoccrError | undefined {
  const { kind, errno } = statusTrailers(err);
  if (kind === undefined || !isErrorKind(kind)) return undefined;
  return new SoccrError(kind, err.details || err.message, err, { errno, grpcCode: err.code });
}

/** A SoccrError as it is, or rebuilt from a failed call the daemon answered; undefined for anything else. */
export function soccrErrorOf(err: unknown): SoccrError | undefined {
  if (err instanceof SoccrError) return err;
  return isServiceError(err) ? soccrErrorFromStatus(err) : undefined;
}
