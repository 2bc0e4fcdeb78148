// Original file: protos/soccr/v1/soccr.proto

export const SessionState = {
  SESSION_STATE_UNSPECIFIED: 0,
  /**
   * Source: sockets frozen, waiting for Resume or Release. Restore: being rebuilt.
   */
  SESSION_STATE_FROZEN: 1,
  /**
   * Restore: rebuilt and verified, held in repair mode until Resume.
   */
  SESSION_STATE_HELD: 2,
  /**
   * Source: thawed, the connections went on at the source. Restore: live and delivered.
   */
  SESSION_STATE_RESUMED: 3,
  /**
   * Source: committed; the daemon dropped its copies.
   */
  SESSION_STATE_RELEASED: 4,
  /**
   * Restore: closed silently, nothing went live.
   */
  SESSION_STATE_ABORTED: 5,
  /**
   * The lease ended: a source was resumed, a restore closed silently.
   */
  SESSION_STATE_EXPIRED: 6,
} as const;

export type SessionState =
  | 'SESSION_STATE_UNSPECIFIED'
  | 0
  /**
   * Source: sockets frozen, waiting for Resume or Release. Restore: being rebuilt.
   */
  | 'SESSION_STATE_FROZEN'
  | 1
  /**
   * Restore: rebuilt and verified, held in repair mode until Resume.
   */
  | 'SESSION_STATE_HELD'
  | 2
  /**
   * Source: thawed, the connections went on at the source. Restore: live and delivered.
   */
  | 'SESSION_STATE_RESUMED'
  | 3
  /**
   * Source: committed; the daemon dropped its copies.
   */
  | 'SESSION_STATE_RELEASED'
  | 4
  /**
   * Restore: closed silently, nothing went live.
   */
  | 'SESSION_STATE_ABORTED'
  | 5
  /**
   * The lease ended: a source was resumed, a restore closed silently.
   */
  | 'SESSION_STATE_EXPIRED'
  | 6

export type SessionState__Output = typeof SessionState[keyof typeof SessionState]
