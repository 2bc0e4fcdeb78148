// Sockets repair mode cannot carry whole. TCP repair saves sequence numbers, options, window and queues;
// some connections keep more state than that, and a copy rebuilt without it is silently broken: kernel
// TLS (or any upper-layer protocol, TCP_ULP) keeps its crypto state in the ULP, TCP-MD5 and TCP-AO sign
// every segment with keys the saved state does not hold, and an MPTCP socket is not a TCP socket at all
// (its subflows are the kernel's). Each is refused (CANNOT_CARRY) before anything is frozen where the
// check is one kernel call; TCP-MD5 keys are only visible to socket diagnostics, which a checkpoint reads
// right after the freeze, so those refuse there and the source is thawed.
import { constants } from 'node:os';
import * as N from '../kernel/native';
import { SoccrError } from '../../protocol/errors';

/** The hint a refused MPTCP socket carries: the common way to get one without asking for it. */
const MPTCP_HINT =
  'Go 1.24 and later make MPTCP sockets by default for net.Listen/net.Dial: run the server with GODEBUG=multipathtcp=0, ' +
  'or call SetMultipathTCP(false) on its net.ListenConfig/net.Dialer';

/** `what`: the socket, or (count > 1) the sockets, refused. */
export function mptcpRefusal(what: string, count = 1): SoccrError {
  const is = count > 1 ? 'are Multipath TCP sockets' : 'is a Multipath TCP socket';
  return new SoccrError('CANNOT_CARRY', `${what} ${is}, which TCP repair cannot checkpoint. ${MPTCP_HINT}`);
}

export function ulpRefusal(what: string, ulp: string): SoccrError {
  const name = ulp === 'tls' ? 'kernel TLS (TCP_ULP "tls")' : `the upper-layer protocol "${ulp}" (TCP_ULP)`;
  return new SoccrError('CANNOT_CARRY', `${what} uses ${name}, whose state repair mode does not save: a copy would be broken`);
}

export function md5Refusal(what: string): SoccrError {
  return new SoccrError(
    'CANNOT_CARRY',
    `${what} signs its segments with TCP-MD5 keys (RFC 2385), which the saved state cannot carry: a copy would be dropped by its peer`,
  );
}

export function aoRefusal(what: string): SoccrError {
  return new SoccrError(
    'CANNOT_CARRY',
    `${what} authenticates its segments with TCP-AO keys (RFC 5925), which the saved state cannot carry: a copy would be dropped by its peer`,
  );
}

/** TCP_ULP_NAME_MAX */
export const ULP_NAME_MAX = 16;
const ulpBuf = N.pinned(ULP_NAME_MAX);

/** The upper-layer protocol of a TCP_ULP getsockopt answer ('' for none: the kernel answers zero bytes). */
export function ulpName(raw: Buffer): string {
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('latin1');
}

/** Reads a socket's upper-layer protocol with one call; '' when it has none. */
export function readUlp(fd: number): string {
  const n = N.getsockoptBytes(fd, N.SOL_TCP, N.TCP.ULP, ulpBuf, ULP_NAME_MAX);
  return ulpName(ulpBuf.buf.subarray(0, n));
}

/** sizeof(struct tcp_ao_info_opt): its reserved fields must be zero when asked. */
const AO_INFO_LEN = 48;
const aoBuf = N.pinned(AO_INFO_LEN);
let aoKernel: boolean | undefined;

/** TCP_AO_INFO of a socket: its length, or -errno. */
function aoInfo(fd: number): number {
  aoBuf.buf.fill(0);
  return N.tryGetsockoptBytes(fd, N.SOL_TCP, N.TCP.AO_INFO, aoBuf, AO_INFO_LEN);
}

/** Whether this kernel has TCP-AO at all (CONFIG_TCP_AO): without it no socket can hold AO keys. */
function kernelHasTcpAo(): boolean {
  if (aoKernel !== undefined) return aoKernel;
  const fd = N.socket(N.AF_INET, N.SOCK_STREAM | N.SOCK_CLOEXEC, N.IPPROTO_TCP);
  try {
    // ENOENT: the kernel knows TCP-AO and this socket has no keys; ENOPROTOOPT: no TCP-AO in this kernel.
    aoKernel = aoInfo(fd) !== -constants.errno.ENOPROTOOPT;
  } finally {
    N.closeQuietly(fd);
  }
  return aoKernel;
}

/** Whether the socket holds TCP-AO keys (TCP_AO_INFO answers only for a socket that has them). */
export function hasAoKeys(fd: number): boolean {
  if (!kernelHasTcpAo()) return false;
  return aoInfo(fd) >= 0;
}

/** Throws CANNOT_CARRY if the TCP socket uses an upper-layer protocol or TCP-AO (MD5: see the header). */
export function checkCarriable(fd: number, what: string): void {
  const ulp = readUlp(fd);
  if (ulp !== '') throw ulpRefusal(what, ulp);
  if (hasAoKeys(fd)) throw aoRefusal(what);
}
