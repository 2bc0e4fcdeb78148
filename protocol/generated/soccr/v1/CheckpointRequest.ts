// Original file: protos/soccr/v1/soccr.proto

import type { CheckpointOptions as _soccr_v1_CheckpointOptions, CheckpointOptions__Output as _soccr_v1_CheckpointOptions__Output } from '../../soccr/v1/CheckpointOptions';
import type { DataTransfer as _soccr_v1_DataTransfer, DataTransfer__Output as _soccr_v1_DataTransfer__Output } from '../../soccr/v1/DataTransfer';

export interface CheckpointRequest {
  /**
   * The process that owns the connections.
   */
  'pid'?: (number);
  /**
   * Which fds to checkpoint; empty with all = true takes every connection the engine supports.
   */
  'fds'?: (number)[];
  'all'?: (boolean);
  'options'?: (_soccr_v1_CheckpointOptions | null);
  /**
   * Send the frames straight to another daemon's data endpoint instead of this stream (see
   * DataTransfer; its endpoint is required here). The daemon connects before it freezes anything; this
   * stream then carries only the SessionHeader and, once every frame was written to the data
   * connection, the StreamEnd.
   */
  'dataTransfer'?: (_soccr_v1_DataTransfer | null);
}

export interface CheckpointRequest__Output {
  /**
   * The process that owns the connections.
   */
  'pid': (number);
  /**
   * Which fds to checkpoint; empty with all = true takes every connection the engine supports.
   */
  'fds': (number)[];
  'all': (boolean);
  'options': (_soccr_v1_CheckpointOptions__Output | null);
  /**
   * Send the frames straight to another daemon's data endpoint instead of this stream (see
   * DataTransfer; its endpoint is required here). The daemon connects before it freezes anything; this
   * stream then carries only the SessionHeader and, once every frame was written to the data
   * connection, the StreamEnd.
   */
  'dataTransfer': (_soccr_v1_DataTransfer__Output | null);
}
