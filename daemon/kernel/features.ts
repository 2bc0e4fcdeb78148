// What works on this host, probed once at start with throw-away sockets: GetVersion reports it.
import * as N from './native';
import type { FeaturesMsg } from '../../protocol/messages';

function attempt(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

function withSocket(domain: number, type: number, protocol: number, fn: (fd: number) => void): boolean {
  let fd = -1;
  try {
    fd = N.socket(domain, type | N.SOCK_CLOEXEC, protocol);
    fn(fd);
    return true;
  } catch {
    return false;
  } finally {
    if (fd >= 0) N.closeQuietly(fd);
  }
}

export function probeFeatures(): FeaturesMsg {
  const scratch = N.pinned(32);
  const tcp = (fn: (fd: number) => void): boolean => withSocket(N.AF_INET, N.SOCK_STREAM, N.IPPROTO_TCP, fn);
  const pidfdGetfd = attempt(() => {
    const pidfd = N.pidfdOpen(process.pid);
    try {
      N.closeQuietly(N.pidfdGetfd(pidfd, 0));
    } finally {
      N.closeQuietly(pidfd);
    }
  });
  return {
    tcpRepair: tcp((fd) => N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR, 1)),
    // On an unconnected socket in repair mode the kernel knows the option (EINVAL/ENOTCONN-free read) or not (ENOPROTOOPT).
    repairWindow: tcp((fd) => {
      N.setsockoptInt(fd, N.SOL_TCP, N.TCP.REPAIR, 1);
      const r = N.tryGetsockoptBytes(fd, N.SOL_TCP, N.TCP.REPAIR_WINDOW, scratch, 20);
      if (r === -92) throw new Error('ENOPROTOOPT');
    }),
    pidfdGetfd,
    bufLock: tcp((fd) => {
      if (N.tryGetsockoptBytes(fd, N.SOL_SOCKET, N.SO.BUF_LOCK, scratch, 4) < 0) throw new Error('no SO_BUF_LOCK');
    }),
    rawSocket: withSocket(N.AF_INET, N.SOCK_RAW, N.IPPROTO_RAW, () => undefined),
    networkLock: false,
    nativeBatch: N.batchPath().native,
    // served wherever pidfd_getfd works: the hand-off takes the sockets with it
    handoff: pidfdGetfd,
  };
}
