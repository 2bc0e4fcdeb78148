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
   * before repair mode goes on until Resume, or until a grace period after Release. Repair mode does
   * not stop a socket's timers: a frozen socket still retransmits its unacknowledged bytes, probes a
   * zero window, sends keepalive probes and acknowledges what reaches it; without the lock these leave.
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
  /**
   * With all: the connections waiting in the accept queues of the process's listening sockets
   * (handshakes completed, not yet accepted by the owner) are accepted on the owner's behalf through the
   * daemon's duplicate of each listener and checkpointed with the others, as established connections.
   * The listeners stay with their owner (SessionHeader.skipped says how many were taken from each). New
   * SYNs to each listener are dropped by the network lock from before the queue is read until the lock
   * lifts (their peers retransmit them). A taken connection cannot go back into a queue: if the source
   * resumes (a migration rolled back), the daemon closes it, and its peer sees it reset.
   */
  'takeBacklog'?: (boolean);
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
   * before repair mode goes on until Resume, or until a grace period after Release. Repair mode does
   * not stop a socket's timers: a frozen socket still retransmits its unacknowledged bytes, probes a
   * zero window, sends keepalive probes and acknowledges what reaches it; without the lock these leave.
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
  /**
   * With all: the connections waiting in the accept queues of the process's listening sockets
   * (handshakes completed, not yet accepted by the owner) are accepted on the owner's behalf through the
   * daemon's duplicate of each listener and checkpointed with the others, as established connections.
   * The listeners stay with their owner (SessionHeader.skipped says how many were taken from each). New
   * SYNs to each listener are dropped by the network lock from before the queue is read until the lock
   * lifts (their peers retransmit them). A taken connection cannot go back into a queue: if the source
   * resumes (a migration rolled back), the daemon closes it, and its peer sees it reset.
   */
  'takeBacklog': (boolean);
}
