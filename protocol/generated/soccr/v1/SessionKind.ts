// Original file: protos/soccr/v1/soccr.proto

export const SessionKind = {
  SESSION_KIND_UNSPECIFIED: 0,
  /**
   * Connections frozen at their source by Checkpoint.
   */
  SESSION_KIND_SOURCE: 1,
  /**
   * Connections rebuilt by Restore.
   */
  SESSION_KIND_RESTORE: 2,
} as const;

export type SessionKind =
  | 'SESSION_KIND_UNSPECIFIED'
  | 0
  /**
   * Connections frozen at their source by Checkpoint.
   */
  | 'SESSION_KIND_SOURCE'
  | 1
  /**
   * Connections rebuilt by Restore.
   */
  | 'SESSION_KIND_RESTORE'
  | 2

export type SessionKind__Output = typeof SessionKind[keyof typeof SessionKind]
