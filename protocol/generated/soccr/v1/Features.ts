// Original file: protos/soccr/v1/soccr.proto


export interface Features {
  /**
   * TCP_REPAIR can be turned on (CAP_NET_ADMIN in the socket's user namespace).
   */
  'tcpRepair'?: (boolean);
  /**
   * TCP_REPAIR_WINDOW is supported (Linux 4.8+); without it the window is not carried over.
   */
  'repairWindow'?: (boolean);
  /**
   * pidfd_open + pidfd_getfd work (Linux 5.6+, CAP_SYS_PTRACE).
   */
  'pidfdGetfd'?: (boolean);
  /**
   * SO_BUF_LOCK is supported (Linux 5.14+): buffer autotuning survives a restore.
   */
  'bufLock'?: (boolean);
  /**
   * Raw sockets work: half-closed connections can be restored.
   */
  'rawSocket'?: (boolean);
  /**
   * The network lock (nftables) works on this host.
   */
  'networkLock'?: (boolean);
  /**
   * The engine runs each step's kernel calls in one FFI call (the batch library built at install);
   * false: one FFI call per kernel call (no C compiler at install, or SOCCRD_NATIVE_BATCH=0). Same
   * results either way; only the cost per connection differs.
   */
  'nativeBatch'?: (boolean);
  /**
   * The Handoff call is served (same-host hand-off of live sockets, listeners included).
   */
  'handoff'?: (boolean);
}

export interface Features__Output {
  /**
   * TCP_REPAIR can be turned on (CAP_NET_ADMIN in the socket's user namespace).
   */
  'tcpRepair': (boolean);
  /**
   * TCP_REPAIR_WINDOW is supported (Linux 4.8+); without it the window is not carried over.
   */
  'repairWindow': (boolean);
  /**
   * pidfd_open + pidfd_getfd work (Linux 5.6+, CAP_SYS_PTRACE).
   */
  'pidfdGetfd': (boolean);
  /**
   * SO_BUF_LOCK is supported (Linux 5.14+): buffer autotuning survives a restore.
   */
  'bufLock': (boolean);
  /**
   * Raw sockets work: half-closed connections can be restored.
   */
  'rawSocket': (boolean);
  /**
   * The network lock (nftables) works on this host.
   */
  'networkLock': (boolean);
  /**
   * The engine runs each step's kernel calls in one FFI call (the batch library built at install);
   * false: one FFI call per kernel call (no C compiler at install, or SOCCRD_NATIVE_BATCH=0). Same
   * results either way; only the cost per connection differs.
   */
  'nativeBatch': (boolean);
  /**
   * The Handoff call is served (same-host hand-off of live sockets, listeners included).
   */
  'handoff': (boolean);
}
