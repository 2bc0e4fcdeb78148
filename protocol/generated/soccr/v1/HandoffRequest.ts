// Original file: protos/soccr/v1/soccr.proto


export interface HandoffRequest {
  /**
   * The process that owns the sockets now.
   */
  'pid'?: (number);
  /**
   * Which fds to hand off (connected or listening TCP sockets); empty with all = true takes every
   * connected TCP socket of the process (and its listening ones with listeners = true).
   */
  'fds'?: (number)[];
  'all'?: (boolean);
  /**
   * With all: listening sockets too; the connections waiting in their accept queues come along.
   */
  'listeners'?: (boolean);
  /**
   * Unix socket path of the new owner's hand-over receiver (docs/handover.md). Each socket's message
   * has its state (LISTEN for a listening socket, whose remote address is the unspecified one, port 0).
   */
  'deliverUnixPath'?: (string);
  /**
   * Kill the old owner (SIGKILL through its pidfd, while it is still stopped) once the receiver has
   * acknowledged. Without it the old owner is left stopped: the caller kills it.
   */
  'killOld'?: (boolean);
  /**
   * When set, the hand-off is refused before anything is touched (FAILED_PRECONDITION, soccr-kind
   * TARGET_STATE) unless the old owner's network namespace is this one (/proc/PID/ns/net,
   * /run/netns/NAME; /proc/self/ns/net is the daemon's own). migrate() passes its destination
   * namespace, and falls back to checkpoint and restore on that refusal. Empty: no check.
   */
  'expectNetns'?: (string);
  /**
   * Up to this many `socket` messages of the hand-over share one sendmsg, their fds attached to its
   * first byte (docs/handover.md, "File descriptors"): 0 takes 16, the most; 1 sends one per message,
   * for receivers whose control buffer takes a single fd. Fewer system calls on both sides: a shorter
   * freeze for many sockets.
   */
  'fdsPerMessage'?: (number);
}

export interface HandoffRequest__Output {
  /**
   * The process that owns the sockets now.
   */
  'pid': (number);
  /**
   * Which fds to hand off (connected or listening TCP sockets); empty with all = true takes every
   * connected TCP socket of the process (and its listening ones with listeners = true).
   */
  'fds': (number)[];
  'all': (boolean);
  /**
   * With all: listening sockets too; the connections waiting in their accept queues come along.
   */
  'listeners': (boolean);
  /**
   * Unix socket path of the new owner's hand-over receiver (docs/handover.md). Each socket's message
   * has its state (LISTEN for a listening socket, whose remote address is the unspecified one, port 0).
   */
  'deliverUnixPath': (string);
  /**
   * Kill the old owner (SIGKILL through its pidfd, while it is still stopped) once the receiver has
   * acknowledged. Without it the old owner is left stopped: the caller kills it.
   */
  'killOld': (boolean);
  /**
   * When set, the hand-off is refused before anything is touched (FAILED_PRECONDITION, soccr-kind
   * TARGET_STATE) unless the old owner's network namespace is this one (/proc/PID/ns/net,
   * /run/netns/NAME; /proc/self/ns/net is the daemon's own). migrate() passes its destination
   * namespace, and falls back to checkpoint and restore on that refusal. Empty: no check.
   */
  'expectNetns': (string);
  /**
   * Up to this many `socket` messages of the hand-over share one sendmsg, their fds attached to its
   * first byte (docs/handover.md, "File descriptors"): 0 takes 16, the most; 1 sends one per message,
   * for receivers whose control buffer takes a single fd. Fewer system calls on both sides: a shorter
   * freeze for many sockets.
   */
  'fdsPerMessage': (number);
}
