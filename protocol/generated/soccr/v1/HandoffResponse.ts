// Original file: protos/soccr/v1/soccr.proto

import type { HandedSocket as _soccr_v1_HandedSocket, HandedSocket__Output as _soccr_v1_HandedSocket__Output } from '../../soccr/v1/HandedSocket';
import type { SkippedSocket as _soccr_v1_SkippedSocket, SkippedSocket__Output as _soccr_v1_SkippedSocket__Output } from '../../soccr/v1/SkippedSocket';
import type { Long } from '@grpc/proto-loader';

export interface HandoffResponse {
  /**
   * The id the hand-over messages carried as their session.
   */
  'handoffId'?: (string);
  'sockets'?: (_soccr_v1_HandedSocket)[];
  'skipped'?: (_soccr_v1_SkippedSocket)[];
  /**
   * Microseconds from the old owner's stop (SIGSTOP sent) to the receiver's acknowledgement: how long
   * no process served the sockets.
   */
  'freezeUs'?: (number | string | Long);
  /**
   * The old owner was killed (kill_old); otherwise it is left stopped.
   */
  'oldOwnerKilled'?: (boolean);
}

export interface HandoffResponse__Output {
  /**
   * The id the hand-over messages carried as their session.
   */
  'handoffId': (string);
  'sockets': (_soccr_v1_HandedSocket__Output)[];
  'skipped': (_soccr_v1_SkippedSocket__Output)[];
  /**
   * Microseconds from the old owner's stop (SIGSTOP sent) to the receiver's acknowledgement: how long
   * no process served the sockets.
   */
  'freezeUs': (number);
  /**
   * The old owner was killed (kill_old); otherwise it is left stopped.
   */
  'oldOwnerKilled': (boolean);
}
