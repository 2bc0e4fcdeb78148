// The public client API of soccrd: the gRPC client (SoccrClient, describeError), checkpoint files
// (readCheckpointFile, describeCheckpointFile) and live migration between two daemons (migrate). It loads
// no native code; the receiving end of a socket hand-over, which does, is its own entry point
// (receiver/receiver.ts).
export {
  SoccrClient,
  describeError,
  readCheckpointFile,
  describeCheckpointFile,
  isServiceError,
  normalizeAddress,
  tlsCredentials,
  sessionKindName,
  sessionStateName,
  SessionKind,
  SessionState,
  AddressFamily,
  DEFAULT_ADDRESS,
  DEFAULT_TIMEOUT_MS,
} from './client';
export type {
  SoccrClientOptions,
  TlsClientFiles,
  CheckpointOptions,
  HandoffOptions,
  HandoffResponseMsg,
  RestoreOptions,
  TransferProgress,
  ProgressCallback,
  CheckpointFileResult,
  CheckpointFileDescription,
  ConnectionDescription,
  GetVersionResponseMsg,
  FeaturesMsg,
  SocketEntryMsg,
  SessionInfoMsg,
  SessionConnectionMsg,
  AddressMsg,
  FrameMsg,
  RestoreOptionsMsg,
  SessionHeaderMsg,
} from './client';
// A daemon's refusal as a typed error: its kind, errno and status code (describeError makes it one line).
export { SoccrError, errorMessage } from '../protocol/errors';
export type { ErrorKind } from '../protocol/errors';
export { soccrErrorOf, soccrErrorFromStatus } from '../protocol/error-status';
// A checkpoint stream may pack frames into batches: unpackFrames gives them one by one.
export { unpackFrames, frameKind } from '../protocol/frames';
export { HANDOVER_MAX_MS, RESUME_DEADLINE_MS } from '../protocol/handover';
export { migrate, MigrateError, MIGRATE_PHASES, DEFAULT_HOOK_TIMEOUT_MS, DEFAULT_RELEASE_ATTEMPTS } from './migrate';
export type { MigrateOptions, MigrateReport, MigratePhase, PhaseEvent, PhaseTiming, HookResult, MigrateConnection, MigrateAddress } from './migrate';
