// Original file: protos/soccr/v1/state.proto

/**
 * Address family of a socket or of a socket address. These are wire values, not the kernel's AF_*
 * constants: IPV4 stands for AF_INET, IPV6 for AF_INET6.
 */
export const AddressFamily = {
  /**
   * Not set. A decoder rejects it.
   */
  ADDRESS_FAMILY_UNSPECIFIED: 0,
  /**
   * AF_INET: struct sockaddr_in.
   */
  ADDRESS_FAMILY_IPV4: 1,
  /**
   * AF_INET6: struct sockaddr_in6 (IPv4-mapped addresses included).
   */
  ADDRESS_FAMILY_IPV6: 2,
} as const;

/**
 * Address family of a socket or of a socket address. These are wire values, not the kernel's AF_*
 * constants: IPV4 stands for AF_INET, IPV6 for AF_INET6.
 */
export type AddressFamily =
  /**
   * Not set. A decoder rejects it.
   */
  | 'ADDRESS_FAMILY_UNSPECIFIED'
  | 0
  /**
   * AF_INET: struct sockaddr_in.
   */
  | 'ADDRESS_FAMILY_IPV4'
  | 1
  /**
   * AF_INET6: struct sockaddr_in6 (IPv4-mapped addresses included).
   */
  | 'ADDRESS_FAMILY_IPV6'
  | 2

/**
 * Address family of a socket or of a socket address. These are wire values, not the kernel's AF_*
 * constants: IPV4 stands for AF_INET, IPV6 for AF_INET6.
 */
export type AddressFamily__Output = typeof AddressFamily[keyof typeof AddressFamily]
