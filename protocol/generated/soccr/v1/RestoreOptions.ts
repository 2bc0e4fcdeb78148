// Original file: protos/soccr/v1/soccr.proto

import type { DataTransfer as _soccr_v1_DataTransfer, DataTransfer__Output as _soccr_v1_DataTransfer__Output } from '../../soccr/v1/DataTransfer';

export interface RestoreOptions {
  /**
   * Network namespace to rebuild the sockets in: /proc/PID/ns/net or /run/netns/NAME; empty for the
   * daemon's own.
   */
  'netns'?: (string);
  /**
   * Unix socket path of the process that takes the restored sockets (see README, hand-over protocol);
   * empty to hold them in the daemon until a Resume that names a path.
   */
  'deliverUnixPath'?: (string);
  /**
   * Make the sockets live as soon as every connection is rebuilt and verified (needs a delivery path).
   * Otherwise the session holds them in repair mode until Resume.
   */
  'goLive'?: (boolean);
  /**
   * Rebuild before the local address has moved here (IP_TRANSPARENT).
   */
  'transparent'?: (boolean);
  /**
   * Lease of a held restore session in milliseconds (0: daemon default); when it ends without Resume,
   * the sockets are closed silently.
   */
  'leaseMs'?: (number);
  /**
   * Do not lock the network here: the caller keeps packets away from the connections until they are
   * live. By default the daemon drops their packets from before the first socket exists until they go
   * live. A held socket sends nothing of its own (its send queue, FINs and keepalive are written at
   * go-live), but the kernel still acknowledges a segment that reaches it (the peer's retransmission
   * once the address has moved): without the lock, keep the peer's packets away until Resume. At
   * go-live the sockets may send (a FIN not yet acknowledged, the ACK of the peer's FIN) just before
   * repair mode ends.
   */
  'noNetworkLock'?: (boolean);
  /**
   * Take the frames from a direct data connection (DataTransfer; endpoint empty) instead of this stream,
   * which then ends after this frame. Needs a daemon started with --data-listen. No connection that
   * proves the key within timeout_ms: UNAVAILABLE; the connection closing before the StreamEnd:
   * UNAVAILABLE; a record that does not open under the key: DATA_LOSS. The frames are checked as on
   * the stream (structure, limits, checksums).
   */
  'dataTransfer'?: (_soccr_v1_DataTransfer | null);
}

export interface RestoreOptions__Output {
  /**
   * Network namespace to rebuild the sockets in: /proc/PID/ns/net or /run/netns/NAME; empty for the
   * daemon's own.
   */
  'netns': (string);
  /**
   * Unix socket path of the process that takes the restored sockets (see README, hand-over protocol);
   * empty to hold them in the daemon until a Resume that names a path.
   */
  'deliverUnixPath': (string);
  /**
   * Make the sockets live as soon as every connection is rebuilt and verified (needs a delivery path).
   * Otherwise the session holds them in repair mode until Resume.
   */
  'goLive': (boolean);
  /**
   * Rebuild before the local address has moved here (IP_TRANSPARENT).
   */
  'transparent': (boolean);
  /**
   * Lease of a held restore session in milliseconds (0: daemon default); when it ends without Resume,
   * the sockets are closed silently.
   */
  'leaseMs': (number);
  /**
   * Do not lock the network here: the caller keeps packets away from the connections until they are
   * live. By default the daemon drops their packets from before the first socket exists until they go
   * live. A held socket sends nothing of its own (its send queue, FINs and keepalive are written at
   * go-live), but the kernel still acknowledges a segment that reaches it (the peer's retransmission
   * once the address has moved): without the lock, keep the peer's packets away until Resume. At
   * go-live the sockets may send (a FIN not yet acknowledged, the ACK of the peer's FIN) just before
   * repair mode ends.
   */
  'noNetworkLock': (boolean);
  /**
   * Take the frames from a direct data connection (DataTransfer; endpoint empty) instead of this stream,
   * which then ends after this frame. Needs a daemon started with --data-listen. No connection that
   * proves the key within timeout_ms: UNAVAILABLE; the connection closing before the StreamEnd:
   * UNAVAILABLE; a record that does not open under the key: DATA_LOSS. The frames are checked as on
   * the stream (structure, limits, checksums).
   */
  'dataTransfer': (_soccr_v1_DataTransfer__Output | null);
}
