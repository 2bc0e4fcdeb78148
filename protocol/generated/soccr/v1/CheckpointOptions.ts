// Original file: protos/soccr/v1/soccr.proto


export interface CheckpointOptions {
  /**
   * How long the session stays frozen without Release or Resume, in milliseconds; 0 takes the
   * daemon's default. The lease is renewed while the Checkpoint stream is open.
   */
  'leaseMs'?: (number);
  /**
   * Do not lock the network: the caller makes sure no packet reaches or leaves the connections while
   * they are frozen. By default the daemon drops their packets in both directions (nftables) from just
   * before repair mode goes on until Resume, or until a grace period after Release.
   */
  'noNetworkLock'?: (boolean);
  /**
   * Stop the owner process (SIGSTOP through a pidfd) before freezing, so that it does not see its
   * sockets fail while frozen; it is continued on Resume, Abort or the end of the lease, and left
   * stopped after Release (to be killed).
   */
  'stopOwner'?: (boolean);
  /**
   * Move what can be moved: a socket that cannot be checkpointed (not TCP, listening, in a state the
   * engine does not support, or holding what repair mode cannot carry: kernel TLS, TCP-MD5 or TCP-AO
   * keys, MPTCP) is left with its owner and reported in SessionHeader.skipped instead of failing the
   * whole checkpoint. Off by default: one such socket fails the checkpoint before anything is frozen.
   */
  'allowPartial'?: (boolean);
}

export interface CheckpointOptions__Output {
  /**
   * How long the session stays frozen without Release or Resume, in milliseconds; 0 takes the
   * daemon's default. The lease is renewed while the Checkpoint stream is open.
   */
  'leaseMs': (number);
  /**
   * Do not lock the network: the caller makes sure no packet reaches or leaves the connections while
   * they are frozen. By default the daemon drops their packets in both directions (nftables) from just
   * before repair mode goes on until Resume, or until a grace period after Release.
   */
  'noNetworkLock': (boolean);
  /**
   * Stop the owner process (SIGSTOP through a pidfd) before freezing, so that it does not see its
   * sockets fail while frozen; it is continued on Resume, Abort or the end of the lease, and left
   * stopped after Release (to be killed).
   */
  'stopOwner': (boolean);
  /**
   * Move what can be moved: a socket that cannot be checkpointed (not TCP, listening, in a state the
   * engine does not support, or holding what repair mode cannot carry: kernel TLS, TCP-MD5 or TCP-AO
   * keys, MPTCP) is left with its owner and reported in SessionHeader.skipped instead of failing the
   * whole checkpoint. Off by default: one such socket fails the checkpoint before anything is frozen.
   */
  'allowPartial': (boolean);
}
