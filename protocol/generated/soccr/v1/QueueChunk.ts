// Original file: protos/soccr/v1/soccr.proto

import type { Queue as _soccr_v1_Queue, Queue__Output as _soccr_v1_Queue__Output } from '../../soccr/v1/Queue';
import type { Long } from '@grpc/proto-loader';

export interface QueueChunk {
  'index'?: (number);
  'queue'?: (_soccr_v1_Queue);
  /**
   * Byte offset of data within its queue; chunks of a queue come in order, without gaps.
   */
  'offset'?: (number | string | Long);
  /**
   * At most 1 MiB.
   */
  'data'?: (Buffer | Uint8Array | string);
}

export interface QueueChunk__Output {
  'index': (number);
  'queue': (_soccr_v1_Queue__Output);
  /**
   * Byte offset of data within its queue; chunks of a queue come in order, without gaps.
   */
  'offset': (number);
  /**
   * At most 1 MiB.
   */
  'data': (Buffer);
}
