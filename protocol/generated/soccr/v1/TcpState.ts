// Original file: protos/soccr/v1/state.proto

/**
 * Kernel TCP states, numbered as in include/net/tcp_states.h and as reported in tcpi_state by
 * getsockopt(TCP_INFO). The engine checkpoints only ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT,
 * LAST_ACK, CLOSING and CLOSE; the others are listed so that every kernel value has a name.
 */
export const TcpState = {
  /**
   * Not a kernel state: the field was never set. A decoder rejects it.
   */
  TCP_STATE_UNSPECIFIED: 0,
  TCP_STATE_ESTABLISHED: 1,
  TCP_STATE_SYN_SENT: 2,
  TCP_STATE_SYN_RECV: 3,
  TCP_STATE_FIN_WAIT1: 4,
  TCP_STATE_FIN_WAIT2: 5,
  TCP_STATE_TIME_WAIT: 6,
  TCP_STATE_CLOSE: 7,
  TCP_STATE_CLOSE_WAIT: 8,
  TCP_STATE_LAST_ACK: 9,
  TCP_STATE_LISTEN: 10,
  TCP_STATE_CLOSING: 11,
} as const;

/**
 * Kernel TCP states, numbered as in include/net/tcp_states.h and as reported in tcpi_state by
 * getsockopt(TCP_INFO). The engine checkpoints only ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT,
 * LAST_ACK, CLOSING and CLOSE; the others are listed so that every kernel value has a name.
 */
export type TcpState =
  /**
   * Not a kernel state: the field was never set. A decoder rejects it.
   */
  | 'TCP_STATE_UNSPECIFIED'
  | 0
  | 'TCP_STATE_ESTABLISHED'
  | 1
  | 'TCP_STATE_SYN_SENT'
  | 2
  | 'TCP_STATE_SYN_RECV'
  | 3
  | 'TCP_STATE_FIN_WAIT1'
  | 4
  | 'TCP_STATE_FIN_WAIT2'
  | 5
  | 'TCP_STATE_TIME_WAIT'
  | 6
  | 'TCP_STATE_CLOSE'
  | 7
  | 'TCP_STATE_CLOSE_WAIT'
  | 8
  | 'TCP_STATE_LAST_ACK'
  | 9
  | 'TCP_STATE_LISTEN'
  | 10
  | 'TCP_STATE_CLOSING'
  | 11

/**
 * Kernel TCP states, numbered as in include/net/tcp_states.h and as reported in tcpi_state by
 * getsockopt(TCP_INFO). The engine checkpoints only ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT,
 * LAST_ACK, CLOSING and CLOSE; the others are listed so that every kernel value has a name.
 */
export type TcpState__Output = typeof TcpState[keyof typeof TcpState]
