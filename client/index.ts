// The public client API of soccrd: the gRPC client (SoccrClient, describeError), checkpoint files
// (readCheckpointFile, describeCheckpointFile) and the receiving end of a socket hand-over.
export {
  SoccrClient,
  describeError,
  readCheckpointFile,
  describeCheckpointFile,
  isServiceError,
  normalizeAddress,
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
  CheckpointOptions,
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
export * from './receiver';
