// Original file: protos/soccr/v1/soccr.proto

import type { RestoreOptions as _soccr_v1_RestoreOptions, RestoreOptions__Output as _soccr_v1_RestoreOptions__Output } from '../../soccr/v1/RestoreOptions';
import type { SessionHeader as _soccr_v1_SessionHeader, SessionHeader__Output as _soccr_v1_SessionHeader__Output } from '../../soccr/v1/SessionHeader';
import type { ConnectionHeader as _soccr_v1_ConnectionHeader, ConnectionHeader__Output as _soccr_v1_ConnectionHeader__Output } from '../../soccr/v1/ConnectionHeader';
import type { QueueChunk as _soccr_v1_QueueChunk, QueueChunk__Output as _soccr_v1_QueueChunk__Output } from '../../soccr/v1/QueueChunk';
import type { ConnectionEnd as _soccr_v1_ConnectionEnd, ConnectionEnd__Output as _soccr_v1_ConnectionEnd__Output } from '../../soccr/v1/ConnectionEnd';
import type { StreamEnd as _soccr_v1_StreamEnd, StreamEnd__Output as _soccr_v1_StreamEnd__Output } from '../../soccr/v1/StreamEnd';
import type { FrameBatch as _soccr_v1_FrameBatch, FrameBatch__Output as _soccr_v1_FrameBatch__Output } from '../../soccr/v1/FrameBatch';

/**
 * One unit of the checkpoint stream, of the restore input and of a checkpoint file.
 */
export interface Frame {
  /**
   * First frame of a Restore call only.
   */
  'restoreOptions'?: (_soccr_v1_RestoreOptions | null);
  'session'?: (_soccr_v1_SessionHeader | null);
  'connection'?: (_soccr_v1_ConnectionHeader | null);
  'chunk'?: (_soccr_v1_QueueChunk | null);
  'end'?: (_soccr_v1_ConnectionEnd | null);
  'streamEnd'?: (_soccr_v1_StreamEnd | null);
  /**
   * Consecutive frames of the stream packed into one message: a gRPC message costs far more than the
   * bytes of a small frame, so a daemon packs the frames of many connections together. The frames
   * inside are read in order as if they had come one by one. A batch holds neither a batch nor
   * restore options. Checkpoint files hold the frames unpacked.
   */
  'batch'?: (_soccr_v1_FrameBatch | null);
  'kind'?: "restoreOptions"|"session"|"connection"|"chunk"|"end"|"streamEnd"|"batch";
}

/**
 * One unit of the checkpoint stream, of the restore input and of a checkpoint file.
 */
export interface Frame__Output {
  /**
   * First frame of a Restore call only.
   */
  'restoreOptions'?: (_soccr_v1_RestoreOptions__Output | null);
  'session'?: (_soccr_v1_SessionHeader__Output | null);
  'connection'?: (_soccr_v1_ConnectionHeader__Output | null);
  'chunk'?: (_soccr_v1_QueueChunk__Output | null);
  'end'?: (_soccr_v1_ConnectionEnd__Output | null);
  'streamEnd'?: (_soccr_v1_StreamEnd__Output | null);
  /**
   * Consecutive frames of the stream packed into one message: a gRPC message costs far more than the
   * bytes of a small frame, so a daemon packs the frames of many connections together. The frames
   * inside are read in order as if they had come one by one. A batch holds neither a batch nor
   * restore options. Checkpoint files hold the frames unpacked.
   */
  'batch'?: (_soccr_v1_FrameBatch__Output | null);
  'kind'?: "restoreOptions"|"session"|"connection"|"chunk"|"end"|"streamEnd"|"batch";
}
