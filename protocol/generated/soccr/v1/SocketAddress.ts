// Original file: protos/soccr/v1/state.proto

import type { AddressFamily as _soccr_v1_AddressFamily, AddressFamily__Output as _soccr_v1_AddressFamily__Output } from '../../soccr/v1/AddressFamily';

/**
 * One end of the connection, as getsockname(2) (local) or getpeername(2) (remote) returned it.
 */
export interface SocketAddress {
  /**
   * Family of the sockaddr the kernel returned. An IPv4 peer of an AF_INET6 socket is IPV6, with an
   * IPv4-mapped ip.
   */
  'family'?: (_soccr_v1_AddressFamily);
  /**
   * Textual address: a dotted quad for IPV4; for IPV6 the RFC 5952 form, an IPv4-mapped address written
   * as ::ffff:a.b.c.d. Decoders check that it parses as an address of `family`.
   */
  'ip'?: (string);
  /**
   * TCP port in host byte order (sin_port / sin6_port converted), 0..65535.
   */
  'port'?: (number);
  /**
   * The scope of an IPv6 link-local address (fe80::/10): the interface its sin6_scope_id numbers, by
   * name, as the socket's own network namespace calls it. Indexes differ between namespaces, so a
   * restore looks the name up in the target namespace (and refuses, naming it, where there is none).
   * Empty for every other address, and in states written before it existed.
   */
  'scopeInterface'?: (string);
}

/**
 * One end of the connection, as getsockname(2) (local) or getpeername(2) (remote) returned it.
 */
export interface SocketAddress__Output {
  /**
   * Family of the sockaddr the kernel returned. An IPv4 peer of an AF_INET6 socket is IPV6, with an
   * IPv4-mapped ip.
   */
  'family': (_soccr_v1_AddressFamily__Output);
  /**
   * Textual address: a dotted quad for IPV4; for IPV6 the RFC 5952 form, an IPv4-mapped address written
   * as ::ffff:a.b.c.d. Decoders check that it parses as an address of `family`.
   */
  'ip': (string);
  /**
   * TCP port in host byte order (sin_port / sin6_port converted), 0..65535.
   */
  'port': (number);
  /**
   * The scope of an IPv6 link-local address (fe80::/10): the interface its sin6_scope_id numbers, by
   * name, as the socket's own network namespace calls it. Indexes differ between namespaces, so a
   * restore looks the name up in the target namespace (and refuses, naming it, where there is none).
   * Empty for every other address, and in states written before it existed.
   */
  'scopeInterface': (string);
}
