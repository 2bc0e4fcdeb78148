// Original file: protos/soccr/v1/state.proto

import type { TcpState as _soccr_v1_TcpState, TcpState__Output as _soccr_v1_TcpState__Output } from '../../soccr/v1/TcpState';
import type { AddressFamily as _soccr_v1_AddressFamily, AddressFamily__Output as _soccr_v1_AddressFamily__Output } from '../../soccr/v1/AddressFamily';
import type { SocketAddress as _soccr_v1_SocketAddress, SocketAddress__Output as _soccr_v1_SocketAddress__Output } from '../../soccr/v1/SocketAddress';
import type { RepairWindow as _soccr_v1_RepairWindow, RepairWindow__Output as _soccr_v1_RepairWindow__Output } from '../../soccr/v1/RepairWindow';
import type { SocketOptions as _soccr_v1_SocketOptions, SocketOptions__Output as _soccr_v1_SocketOptions__Output } from '../../soccr/v1/SocketOptions';

/**
 * One checkpointed TCP connection.
 * 
 * Streaming: a transfer may send a ConnectionState as a header with recv_queue and send_queue left
 * empty, and carry the queue bytes in separate chunk frames that follow it; inq_len and outq_len then
 * give the lengths those chunks must add up to. When the queues travel inline (as daemon/wire.ts
 * encodes them), recv_queue holds exactly inq_len bytes and send_queue exactly outq_len bytes.
 */
export interface ConnectionState {
  /**
   * Format version of this state; STATE_VERSION in protocol/saved-state.ts (currently 1). A decoder refuses any
   * other value, including 0 (absent).
   */
  'version'?: (number);
  /**
   * TCP state of the connection at checkpoint time: tcpi_state from getsockopt(SOL_TCP, TCP_INFO).
   */
  'state'?: (_soccr_v1_TcpState);
  /**
   * Family of the socket itself (the domain given to socket(2) on restore). An IPv4 connection on an
   * AF_INET6 socket is IPV6 here and its addresses are IPv4-mapped.
   */
  'socketFamily'?: (_soccr_v1_AddressFamily);
  /**
   * Local end: getsockname(2). Required.
   */
  'local'?: (_soccr_v1_SocketAddress | null);
  /**
   * Remote end: getpeername(2). Required.
   */
  'remote'?: (_soccr_v1_SocketAddress | null);
  /**
   * rcv_nxt: the next sequence number expected from the peer, read with getsockopt(SOL_TCP,
   * TCP_QUEUE_SEQ) after setsockopt(TCP_REPAIR_QUEUE, TCP_RECV_QUEUE). Counts a received FIN.
   */
  'inqSeq'?: (number);
  /**
   * write_seq: the sequence number after the last byte queued for sending, read with getsockopt(SOL_TCP,
   * TCP_QUEUE_SEQ) after setsockopt(TCP_REPAIR_QUEUE, TCP_SEND_QUEUE). Counts a sent FIN.
   */
  'outqSeq'?: (number);
  /**
   * Unread bytes in the receive queue: ioctl(SIOCINQ). Length of recv_queue.
   */
  'inqLen'?: (number);
  /**
   * Bytes in the send queue, sent-but-unacknowledged first, then never sent: ioctl(SIOCOUTQ), less one
   * for a FIN we sent (a FIN carries no data). Length of send_queue. 0 in state CLOSE.
   */
  'outqLen'?: (number);
  /**
   * The never-sent tail of the send queue, in bytes: ioctl(SIOCOUTQNSD), less one for a queued FIN.
   * At most outq_len; the first outq_len - unsent_len bytes of send_queue were already sent.
   */
  'unsentLen'?: (number);
  /**
   * MSS clamp in bytes: getsockopt(SOL_TCP, TCP_MAXSEG). Restored through TCPOPT_MSS of
   * TCP_REPAIR_OPTIONS.
   */
  'mssClamp'?: (number);
  /**
   * tcpi_options from getsockopt(SOL_TCP, TCP_INFO): TCPI_OPT_* bits negotiated in the handshake
   * (1 = TIMESTAMPS, 2 = SACK, 4 = WSCALE).
   */
  'tcpOptions'?: (number);
  /**
   * Send window scale (shift count, 0..14): tcpi_snd_wscale from TCP_INFO; 0 unless WSCALE was
   * negotiated.
   */
  'sndWscale'?: (number);
  /**
   * Receive window scale (shift count, 0..14): tcpi_rcv_wscale from TCP_INFO; 0 unless WSCALE was
   * negotiated.
   */
  'rcvWscale'?: (number);
  /**
   * TCP timestamp clock value: getsockopt(SOL_TCP, TCP_TIMESTAMP), in the kernel's timestamp units
   * (milliseconds on current kernels). 0 when timestamps were not negotiated.
   */
  'timestamp'?: (number);
  /**
   * The repair window: getsockopt(SOL_TCP, TCP_REPAIR_WINDOW). Absent when the kernel lacks
   * TCP_REPAIR_WINDOW (before Linux 4.8, ENOPROTOOPT); restore then leaves the window to the kernel.
   */
  'window'?: (_soccr_v1_RepairWindow | null);
  /**
   * Contents of the receive queue (data received but not yet read by the owner), peeked with
   * recv(MSG_PEEK) under TCP_REPAIR_QUEUE = TCP_RECV_QUEUE. Exactly inq_len bytes when carried inline;
   * may be left empty in a streaming header when the bytes travel in separate chunk frames.
   */
  'recvQueue'?: (Buffer | Uint8Array | string);
  /**
   * Contents of the send queue (sent-but-unacknowledged bytes, then the never-sent tail), peeked with
   * recv(MSG_PEEK) under TCP_REPAIR_QUEUE = TCP_SEND_QUEUE. Exactly outq_len bytes when carried inline;
   * may be left empty in a streaming header when the bytes travel in separate chunk frames.
   */
  'sendQueue'?: (Buffer | Uint8Array | string);
  /**
   * The owner's ordinary socket options. Required. Numbered last so that a state cut short anywhere
   * lacks it and is refused.
   */
  'options'?: (_soccr_v1_SocketOptions | null);
  '_window'?: "window";
}

/**
 * One checkpointed TCP connection.
 * 
 * Streaming: a transfer may send a ConnectionState as a header with recv_queue and send_queue left
 * empty, and carry the queue bytes in separate chunk frames that follow it; inq_len and outq_len then
 * give the lengths those chunks must add up to. When the queues travel inline (as daemon/wire.ts
 * encodes them), recv_queue holds exactly inq_len bytes and send_queue exactly outq_len bytes.
 */
export interface ConnectionState__Output {
  /**
   * Format version of this state; STATE_VERSION in protocol/saved-state.ts (currently 1). A decoder refuses any
   * other value, including 0 (absent).
   */
  'version': (number);
  /**
   * TCP state of the connection at checkpoint time: tcpi_state from getsockopt(SOL_TCP, TCP_INFO).
   */
  'state': (_soccr_v1_TcpState__Output);
  /**
   * Family of the socket itself (the domain given to socket(2) on restore). An IPv4 connection on an
   * AF_INET6 socket is IPV6 here and its addresses are IPv4-mapped.
   */
  'socketFamily': (_soccr_v1_AddressFamily__Output);
  /**
   * Local end: getsockname(2). Required.
   */
  'local': (_soccr_v1_SocketAddress__Output | null);
  /**
   * Remote end: getpeername(2). Required.
   */
  'remote': (_soccr_v1_SocketAddress__Output | null);
  /**
   * rcv_nxt: the next sequence number expected from the peer, read with getsockopt(SOL_TCP,
   * TCP_QUEUE_SEQ) after setsockopt(TCP_REPAIR_QUEUE, TCP_RECV_QUEUE). Counts a received FIN.
   */
  'inqSeq': (number);
  /**
   * write_seq: the sequence number after the last byte queued for sending, read with getsockopt(SOL_TCP,
   * TCP_QUEUE_SEQ) after setsockopt(TCP_REPAIR_QUEUE, TCP_SEND_QUEUE). Counts a sent FIN.
   */
  'outqSeq': (number);
  /**
   * Unread bytes in the receive queue: ioctl(SIOCINQ). Length of recv_queue.
   */
  'inqLen': (number);
  /**
   * Bytes in the send queue, sent-but-unacknowledged first, then never sent: ioctl(SIOCOUTQ), less one
   * for a FIN we sent (a FIN carries no data). Length of send_queue. 0 in state CLOSE.
   */
  'outqLen': (number);
  /**
   * The never-sent tail of the send queue, in bytes: ioctl(SIOCOUTQNSD), less one for a queued FIN.
   * At most outq_len; the first outq_len - unsent_len bytes of send_queue were already sent.
   */
  'unsentLen': (number);
  /**
   * MSS clamp in bytes: getsockopt(SOL_TCP, TCP_MAXSEG). Restored through TCPOPT_MSS of
   * TCP_REPAIR_OPTIONS.
   */
  'mssClamp': (number);
  /**
   * tcpi_options from getsockopt(SOL_TCP, TCP_INFO): TCPI_OPT_* bits negotiated in the handshake
   * (1 = TIMESTAMPS, 2 = SACK, 4 = WSCALE).
   */
  'tcpOptions': (number);
  /**
   * Send window scale (shift count, 0..14): tcpi_snd_wscale from TCP_INFO; 0 unless WSCALE was
   * negotiated.
   */
  'sndWscale': (number);
  /**
   * Receive window scale (shift count, 0..14): tcpi_rcv_wscale from TCP_INFO; 0 unless WSCALE was
   * negotiated.
   */
  'rcvWscale': (number);
  /**
   * TCP timestamp clock value: getsockopt(SOL_TCP, TCP_TIMESTAMP), in the kernel's timestamp units
   * (milliseconds on current kernels). 0 when timestamps were not negotiated.
   */
  'timestamp': (number);
  /**
   * The repair window: getsockopt(SOL_TCP, TCP_REPAIR_WINDOW). Absent when the kernel lacks
   * TCP_REPAIR_WINDOW (before Linux 4.8, ENOPROTOOPT); restore then leaves the window to the kernel.
   */
  'window'?: (_soccr_v1_RepairWindow__Output | null);
  /**
   * Contents of the receive queue (data received but not yet read by the owner), peeked with
   * recv(MSG_PEEK) under TCP_REPAIR_QUEUE = TCP_RECV_QUEUE. Exactly inq_len bytes when carried inline;
   * may be left empty in a streaming header when the bytes travel in separate chunk frames.
   */
  'recvQueue': (Buffer);
  /**
   * Contents of the send queue (sent-but-unacknowledged bytes, then the never-sent tail), peeked with
   * recv(MSG_PEEK) under TCP_REPAIR_QUEUE = TCP_SEND_QUEUE. Exactly outq_len bytes when carried inline;
   * may be left empty in a streaming header when the bytes travel in separate chunk frames.
   */
  'sendQueue': (Buffer);
  /**
   * The owner's ordinary socket options. Required. Numbered last so that a state cut short anywhere
   * lacks it and is refused.
   */
  'options': (_soccr_v1_SocketOptions__Output | null);
  '_window'?: "window";
}
