// Original file: protos/soccr/v1/state.proto


/**
 * struct tcp_repair_window, read with getsockopt(SOL_TCP, TCP_REPAIR_WINDOW) on the repaired socket and
 * written back with setsockopt(TCP_REPAIR_WINDOW) on restore. Sequence numbers wrap modulo 2^32;
 * windows are in bytes, already scaled (not shifted by the window scale).
 */
export interface RepairWindow {
  /**
   * snd_wl1: sequence number of the segment that last updated the send window.
   */
  'sndWl1'?: (number);
  /**
   * snd_wnd: the send window the peer advertised, in bytes.
   */
  'sndWnd'?: (number);
  /**
   * max_window: the largest window the peer has ever advertised, in bytes.
   */
  'maxWindow'?: (number);
  /**
   * rcv_wnd: the receive window we currently advertise, in bytes.
   */
  'rcvWnd'?: (number);
  /**
   * rcv_wup: rcv_nxt at the time of our last window update (sequence number).
   */
  'rcvWup'?: (number);
}

/**
 * struct tcp_repair_window, read with getsockopt(SOL_TCP, TCP_REPAIR_WINDOW) on the repaired socket and
 * written back with setsockopt(TCP_REPAIR_WINDOW) on restore. Sequence numbers wrap modulo 2^32;
 * windows are in bytes, already scaled (not shifted by the window scale).
 */
export interface RepairWindow__Output {
  /**
   * snd_wl1: sequence number of the segment that last updated the send window.
   */
  'sndWl1': (number);
  /**
   * snd_wnd: the send window the peer advertised, in bytes.
   */
  'sndWnd': (number);
  /**
   * max_window: the largest window the peer has ever advertised, in bytes.
   */
  'maxWindow': (number);
  /**
   * rcv_wnd: the receive window we currently advertise, in bytes.
   */
  'rcvWnd': (number);
  /**
   * rcv_wup: rcv_nxt at the time of our last window update (sequence number).
   */
  'rcvWup': (number);
}
