// Original file: protos/soccr/v1/soccr.proto

export const Queue = {
  QUEUE_UNSPECIFIED: 0,
  /**
   * Bytes received from the peer and not yet read by the owner.
   */
  QUEUE_RECV: 1,
  /**
   * Bytes written by the owner: first the unacknowledged part, then the never-sent part.
   */
  QUEUE_SEND: 2,
} as const;

export type Queue =
  | 'QUEUE_UNSPECIFIED'
  | 0
  /**
   * Bytes received from the peer and not yet read by the owner.
   */
  | 'QUEUE_RECV'
  | 1
  /**
   * Bytes written by the owner: first the unacknowledged part, then the never-sent part.
   */
  | 'QUEUE_SEND'
  | 2

export type Queue__Output = typeof Queue[keyof typeof Queue]
