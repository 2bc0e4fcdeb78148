// Errors on the wire, both ways: the daemon turns a SoccrError into a gRPC status carrying its kind and
// errno twice: as a google.rpc.Status with an ErrorInfo in the `grpc-status-details-bin` trailer (what
// Google APIs send, and what Go, Python and grpcurl read), and in the `soccr-kind` / `soccr-errno`
// trailers older clients read (errorStatus). A client turns such a status back into a SoccrError
// (soccrErrorFromStatus). The kind -> status code table is complete at compile time.
import * as grpc from '@grpc/grpc-js';
import { ErrorKind, SoccrError, SyscallError, errorMessage } from './errors';
import { protoRoot } from './proto';

/** The trailer naming the daemon's error kind: present on every error status the daemon itself sends. */
export const KIND_TRAILER = 'soccr-kind';
/** The trailer naming the errno (EPERM, ESRCH, ...) when a kernel call caused the error. */
export const ERRNO_TRAILER = 'soccr-errno';
/** The trailer holding the serialized google.rpc.Status (gRPC's own name for it). */
export const STATUS_DETAILS_TRAILER = 'grpc-status-details-bin';
/** ErrorInfo.domain of soccrd's errors: with the reason (the kind) it names the error. */
export const ERROR_DOMAIN = 'soccrd.io';
/** ErrorInfo.reason of a failure the daemon did not expect (not one of its kinds: a bug). */
export const UNEXPECTED_REASON = 'INTERNAL';
const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

/** google.rpc.ErrorInfo as plain data; metadata keys soccrd sends: errno, session, connection. */
export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

/** What an error is about, where the code that turns it into a status knows it better than the error. */
export interface ErrorContext {
  session?: string;
  connection?: string;
}

const StatusType = protoRoot.lookupType('google.rpc.Status');
const ErrorInfoType = protoRoot.lookupType('google.rpc.ErrorInfo');
// protobufjs's built-in google.protobuf.Any keeps the proto's field name (type_url), not camelCase.
const ANY_TYPE_URL = protoRoot.lookupType('google.protobuf.Any').fieldsById[1].name;

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
  DELIVERY: grpc.status.FAILED_PRECONDITION,
  LOCK_TABLE_TAKEN: grpc.status.FAILED_PRECONDITION,
  DATA_PATH: grpc.status.UNAVAILABLE,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  FORBIDDEN: grpc.status.PERMISSION_DENIED,
  KERNEL: grpc.status.INTERNAL,
};

export function isErrorKind(s: string): s is ErrorKind {
  return Object.prototype.hasOwnProperty.call(STATUS_BY_KIND, s);
}

/**
 * The daemon's side: any error as a gRPC status carrying the daemon's kind, the errno name and, where
 * known, the session and connection it is about (the error's own, else `where`'s): in an ErrorInfo
 * in google.rpc.Status details, and the kind and errno in their own trailers too.
 */
export function errorStatus(err: unknown, where: ErrorContext = {}): Pick<grpc.StatusObject, 'code' | 'details' | 'metadata'> {
  let code: grpc.status = grpc.status.INTERNAL;
  let kind: string | undefined;
  let errno: string | undefined;
  const details = errorMessage(err);
  const about = { ...where };
  if (err instanceof SoccrError) {
    ({ kind, errno } = err);
    code = STATUS_BY_KIND[err.kind];
    if (err.session !== undefined) about.session = err.session;
    if (err.connection !== undefined) about.connection = err.connection;
  } else if (err instanceof SyscallError) {
    kind = 'KERNEL';
    errno = err.code;
    code = err.code === 'EPERM' || err.code === 'EACCES' ? grpc.status.PERMISSION_DENIED : grpc.status.INTERNAL;
  }
  const metadata = new grpc.Metadata();
  if (kind !== undefined) metadata.set(KIND_TRAILER, kind);
  if (errno !== undefined) metadata.set(ERRNO_TRAILER, errno);
  const info: ErrorInfo = { reason: kind ?? UNEXPECTED_REASON, domain: ERROR_DOMAIN, metadata: {} };
  if (errno !== undefined) info.metadata.errno = errno;
  if (about.session !== undefined && about.session !== '') info.metadata.session = about.session;
  if (about.connection !== undefined && about.connection !== '') info.metadata.connection = about.connection;
  metadata.set(STATUS_DETAILS_TRAILER, encodeStatusDetails(code, details, info));
  return { code, details, metadata };
}

/** A serialized google.rpc.Status holding one ErrorInfo. */
export function encodeStatusDetails(code: grpc.status, message: string, info: ErrorInfo): Buffer {
  const detail = { [ANY_TYPE_URL]: ERROR_INFO_TYPE_URL, value: ErrorInfoType.encode(ErrorInfoType.fromObject(info)).finish() };
  return Buffer.from(StatusType.encode(StatusType.fromObject({ code, message, details: [detail] })).finish());
}

/**
 * The ErrorInfo in a failed call's google.rpc.Status details (the `grpc-status-details-bin` trailer),
 * whoever sent it; undefined when there is none or it does not decode.
 */
export function errorInfoOf(err: grpc.ServiceError): ErrorInfo | undefined {
  const bin = err.metadata.get(STATUS_DETAILS_TRAILER)[0];
  if (!Buffer.isBuffer(bin)) return undefined;
  try {
    const status = StatusType.toObject(StatusType.decode(bin), { defaults: true }) as { details: Array<Record<string, unknown>> };
    const any = status.details.find((d) => d[ANY_TYPE_URL] === ERROR_INFO_TYPE_URL);
    if (!any) return undefined;
    if (!(any.value instanceof Uint8Array)) return undefined;
    return ErrorInfoType.toObject(ErrorInfoType.decode(any.value), { defaults: true }) as ErrorInfo;
  } catch {
    return undefined;
  }
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

/**
 * The daemon's kind and errno of a failed call, each absent when not sent: from its ErrorInfo (domain
 * soccrd.io), else from the `soccr-kind` and `soccr-errno` trailers (a daemon older than the details).
 */
export function statusTrailers(err: grpc.ServiceError): { kind?: string; errno?: string; session?: string; connection?: string } {
  const info = errorInfoOf(err);
  if (info?.domain === ERROR_DOMAIN && info.reason !== UNEXPECTED_REASON) {
    const { errno, session, connection } = info.metadata;
    return { kind: info.reason, errno, session, connection };
  }
  const read = (key: string): string | undefined => {
    const v = err.metadata.get(key)[0];
    return v === undefined ? undefined : String(v);
  };
  return { kind: read(KIND_TRAILER), errno: read(ERRNO_TRAILER) };
}

/**
 * The client's side: the SoccrError the daemon sent: its kind, errno, session and connection, its
 * message (the status details), the status code as grpcCode and the ServiceError as cause. Undefined
 * when the daemon did not answer (no ErrorInfo or `soccr-kind`: grpc-js's own UNAVAILABLE,
 * DEADLINE_EXCEEDED, CANCELLED) or sent a kind this client does not know (a newer daemon).
 */
export function soccrErrorFromStatus(err: grpc.ServiceError): SoccrError | undefined {
  const { kind, ...rest } = statusTrailers(err);
  if (kind === undefined || !isErrorKind(kind)) return undefined;
  return new SoccrError(kind, err.details || err.message, err, { ...rest, grpcCode: err.code });
}

/** A SoccrError as it is, or rebuilt from a failed call the daemon answered; undefined for anything else. */
export function soccrErrorOf(err: unknown): SoccrError | undefined {
  if (err instanceof SoccrError) return err;
  return isServiceError(err) ? soccrErrorFromStatus(err) : undefined;
}
