// Original file: protos/soccr/v1/state.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Ordinary socket options the owner expects to survive a migration. Read with getsockopt(2) on the
 * original socket and set again with setsockopt(2) on the restored one. The int32 fields carry the C
 * `int` getsockopt returned, unchanged (a value above 2^31 - 1, possible for SO_MARK, arrives negative).
 */
export interface SocketOptions {
  /**
   * SO_REUSEADDR as the owner had it, read with getsockopt(SOL_SOCKET, SO_REUSEADDR) before repair mode
   * was turned on (leaving repair mode clears it, so the engine restores it last).
   */
  'reuseAddr'?: (boolean);
  /**
   * TCP_NODELAY: getsockopt(SOL_TCP, TCP_NODELAY) != 0 (Nagle's algorithm off).
   */
  'noDelay'?: (boolean);
  /**
   * TCP_CORK: getsockopt(SOL_TCP, TCP_CORK) != 0.
   */
  'cork'?: (boolean);
  /**
   * SO_KEEPALIVE: getsockopt(SOL_SOCKET, SO_KEEPALIVE) != 0.
   */
  'keepAlive'?: (boolean);
  /**
   * TCP_KEEPIDLE: idle time before the first keepalive probe, in seconds.
   */
  'keepIdle'?: (number);
  /**
   * TCP_KEEPINTVL: interval between keepalive probes, in seconds.
   */
  'keepIntvl'?: (number);
  /**
   * TCP_KEEPCNT: unanswered keepalive probes before the connection is dropped.
   */
  'keepCnt'?: (number);
  /**
   * TCP_USER_TIMEOUT: how long transmitted data may stay unacknowledged, in milliseconds (0 = system
   * default).
   */
  'userTimeout'?: (number);
  /**
   * TCP_CONGESTION: name of the congestion control algorithm ("cubic", "bbr", ...), at most 15 bytes
   * (TCP_CA_NAME_MAX - 1), without the NUL terminator.
   */
  'congestion'?: (string);
  /**
   * SO_SNDBUF in bytes, as getsockopt(SOL_SOCKET, SO_SNDBUF) reports it (the kernel doubles what
   * setsockopt is given; restore halves it again).
   */
  'sndBuf'?: (number);
  /**
   * SO_RCVBUF in bytes, as getsockopt(SOL_SOCKET, SO_RCVBUF) reports it (doubled like snd_buf).
   */
  'rcvBuf'?: (number);
  /**
   * Traffic class byte: getsockopt(SOL_IP, IP_TOS) on an IPV4 socket, getsockopt(SOL_IPV6, IPV6_TCLASS)
   * on an IPV6 one.
   */
  'tos'?: (number);
  /**
   * SO_MARK: the packet mark (fwmark) used by policy routing and netfilter.
   */
  'mark'?: (number);
  /**
   * SO_BUF_LOCK (Linux 5.14+): bit 1 = the send buffer size was set by the user, bit 2 = the receive
   * buffer size. An unlocked size is the kernel's autotuning, which the restored socket keeps doing.
   * 3 where the kernel cannot tell.
   */
  'bufLock'?: (number);
  /**
   * Unicast hop limit: getsockopt(SOL_IP, IP_TTL) for an IPv4 connection (an IPv4-mapped one on an
   * IPV6 socket included: its packets are IPv4), getsockopt(SOL_IPV6, IPV6_UNICAST_HOPS) for an IPv6
   * one. The kernel reports its effective value (its namespace's default where none was set); restore
   * sets it only where it differs from what a new socket in the target namespace reports. Absent: not
   * carried.
   */
  'ttl'?: (number);
  /**
   * SO_PRIORITY. Setting IP_TOS on an IPv4 socket also sets it (from the TOS), so its 0 is meaningful:
   * restore sets it after IP_TOS. Absent: not carried (IP_TOS decides, as before).
   */
  'priority'?: (number);
  /**
   * SO_RCVLOWAT in bytes. The kernel reports at least 1 (its default); 0: not carried.
   */
  'rcvLowat'?: (number);
  /**
   * SO_RCVTIMEO and SO_SNDTIMEO in microseconds (0: none, blocking calls wait forever). The kernel
   * keeps them in jiffies: what it reports is rounded to its tick. A timeout longer than 2^53 - 1
   * microseconds (285 years) is carried as that.
   */
  'rcvTimeoutUs'?: (number | string | Long);
  /**
   * SO_SNDTIMEO, as rcv_timeout_us.
   */
  'sndTimeoutUs'?: (number | string | Long);
  /**
   * SO_LINGER: present when l_onoff was set, with l_linger in seconds; 0 seconds is meaningful (close
   * resets the connection instead of ending it with a FIN). Absent: linger off.
   */
  'lingerSeconds'?: (number);
  /**
   * SO_REUSEPORT.
   */
  'reusePort'?: (boolean);
  /**
   * IPV6_V6ONLY, on IPV6 sockets only (false on IPV4 ones). Set before bind; binding to a specific,
   * not IPv4-mapped IPv6 address makes it true in any case (the kernel's rule), so a saved false reads
   * back true on such a connection, where it changes nothing.
   */
  'v6only'?: (boolean);
  /**
   * IP_FREEBIND (IPV6_FREEBIND is the same flag). Set after connect, so that binding the restored
   * socket still checks that its local address is there.
   */
  'freebind'?: (boolean);
  /**
   * SO_BINDTODEVICE: the name of the interface the socket is bound to, empty if none. A VRF or one
   * interface of a multi-homed host; an IPv6 link-local connection is bound to its scope's interface
   * by the kernel itself. Set before bind, in the target namespace, which must have an interface of
   * that name (a restore is refused with FAILED_PRECONDITION naming it otherwise).
   */
  'bindDevice'?: (string);
  /**
   * TCP_NOTSENT_LOWAT in bytes; 0: not set (the namespace's tcp_notsent_lowat applies).
   */
  'notsentLowat'?: (number);
  /**
   * TCP_WINDOW_CLAMP: the bound on the receive window we advertise, in bytes. The kernel sets it itself
   * (from the receive buffer, and raises it as autotuning grows the buffer), so it is always reported;
   * restore sets it last, after the repair window. 0: not carried (the kernel computes its own).
   */
  'windowClamp'?: (number);
  '_ttl'?: "ttl";
  '_priority'?: "priority";
  '_lingerSeconds'?: "lingerSeconds";
}

/**
 * Ordinary socket options the owner expects to survive a migration. Read with getsockopt(2) on the
 * original socket and set again with setsockopt(2) on the restored one. The int32 fields carry the C
 * `int` getsockopt returned, unchanged (a value above 2^31 - 1, possible for SO_MARK, arrives negative).
 */
export interface SocketOptions__Output {
  /**
   * SO_REUSEADDR as the owner had it, read with getsockopt(SOL_SOCKET, SO_REUSEADDR) before repair mode
   * was turned on (leaving repair mode clears it, so the engine restores it last).
   */
  'reuseAddr': (boolean);
  /**
   * TCP_NODELAY: getsockopt(SOL_TCP, TCP_NODELAY) != 0 (Nagle's algorithm off).
   */
  'noDelay': (boolean);
  /**
   * TCP_CORK: getsockopt(SOL_TCP, TCP_CORK) != 0.
   */
  'cork': (boolean);
  /**
   * SO_KEEPALIVE: getsockopt(SOL_SOCKET, SO_KEEPALIVE) != 0.
   */
  'keepAlive': (boolean);
  /**
   * TCP_KEEPIDLE: idle time before the first keepalive probe, in seconds.
   */
  'keepIdle': (number);
  /**
   * TCP_KEEPINTVL: interval between keepalive probes, in seconds.
   */
  'keepIntvl': (number);
  /**
   * TCP_KEEPCNT: unanswered keepalive probes before the connection is dropped.
   */
  'keepCnt': (number);
  /**
   * TCP_USER_TIMEOUT: how long transmitted data may stay unacknowledged, in milliseconds (0 = system
   * default).
   */
  'userTimeout': (number);
  /**
   * TCP_CONGESTION: name of the congestion control algorithm ("cubic", "bbr", ...), at most 15 bytes
   * (TCP_CA_NAME_MAX - 1), without the NUL terminator.
   */
  'congestion': (string);
  /**
   * SO_SNDBUF in bytes, as getsockopt(SOL_SOCKET, SO_SNDBUF) reports it (the kernel doubles what
   * setsockopt is given; restore halves it again).
   */
  'sndBuf': (number);
  /**
   * SO_RCVBUF in bytes, as getsockopt(SOL_SOCKET, SO_RCVBUF) reports it (doubled like snd_buf).
   */
  'rcvBuf': (number);
  /**
   * Traffic class byte: getsockopt(SOL_IP, IP_TOS) on an IPV4 socket, getsockopt(SOL_IPV6, IPV6_TCLASS)
   * on an IPV6 one.
   */
  'tos': (number);
  /**
   * SO_MARK: the packet mark (fwmark) used by policy routing and netfilter.
   */
  'mark': (number);
  /**
   * SO_BUF_LOCK (Linux 5.14+): bit 1 = the send buffer size was set by the user, bit 2 = the receive
   * buffer size. An unlocked size is the kernel's autotuning, which the restored socket keeps doing.
   * 3 where the kernel cannot tell.
   */
  'bufLock': (number);
  /**
   * Unicast hop limit: getsockopt(SOL_IP, IP_TTL) for an IPv4 connection (an IPv4-mapped one on an
   * IPV6 socket included: its packets are IPv4), getsockopt(SOL_IPV6, IPV6_UNICAST_HOPS) for an IPv6
   * one. The kernel reports its effective value (its namespace's default where none was set); restore
   * sets it only where it differs from what a new socket in the target namespace reports. Absent: not
   * carried.
   */
  'ttl'?: (number);
  /**
   * SO_PRIORITY. Setting IP_TOS on an IPv4 socket also sets it (from the TOS), so its 0 is meaningful:
   * restore sets it after IP_TOS. Absent: not carried (IP_TOS decides, as before).
   */
  'priority'?: (number);
  /**
   * SO_RCVLOWAT in bytes. The kernel reports at least 1 (its default); 0: not carried.
   */
  'rcvLowat': (number);
  /**
   * SO_RCVTIMEO and SO_SNDTIMEO in microseconds (0: none, blocking calls wait forever). The kernel
   * keeps them in jiffies: what it reports is rounded to its tick. A timeout longer than 2^53 - 1
   * microseconds (285 years) is carried as that.
   */
  'rcvTimeoutUs': (number);
  /**
   * SO_SNDTIMEO, as rcv_timeout_us.
   */
  'sndTimeoutUs': (number);
  /**
   * SO_LINGER: present when l_onoff was set, with l_linger in seconds; 0 seconds is meaningful (close
   * resets the connection instead of ending it with a FIN). Absent: linger off.
   */
  'lingerSeconds'?: (number);
  /**
   * SO_REUSEPORT.
   */
  'reusePort': (boolean);
  /**
   * IPV6_V6ONLY, on IPV6 sockets only (false on IPV4 ones). Set before bind; binding to a specific,
   * not IPv4-mapped IPv6 address makes it true in any case (the kernel's rule), so a saved false reads
   * back true on such a connection, where it changes nothing.
   */
  'v6only': (boolean);
  /**
   * IP_FREEBIND (IPV6_FREEBIND is the same flag). Set after connect, so that binding the restored
   * socket still checks that its local address is there.
   */
  'freebind': (boolean);
  /**
   * SO_BINDTODEVICE: the name of the interface the socket is bound to, empty if none. A VRF or one
   * interface of a multi-homed host; an IPv6 link-local connection is bound to its scope's interface
   * by the kernel itself. Set before bind, in the target namespace, which must have an interface of
   * that name (a restore is refused with FAILED_PRECONDITION naming it otherwise).
   */
  'bindDevice': (string);
  /**
   * TCP_NOTSENT_LOWAT in bytes; 0: not set (the namespace's tcp_notsent_lowat applies).
   */
  'notsentLowat': (number);
  /**
   * TCP_WINDOW_CLAMP: the bound on the receive window we advertise, in bytes. The kernel sets it itself
   * (from the receive buffer, and raises it as autotuning grows the buffer), so it is always reported;
   * restore sets it last, after the repair window. 0: not carried (the kernel computes its own).
   */
  'windowClamp': (number);
  '_ttl'?: "ttl";
  '_priority'?: "priority";
  '_lingerSeconds'?: "lingerSeconds";
}
