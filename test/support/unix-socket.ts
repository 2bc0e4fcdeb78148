// Unix stream sockets made with raw calls, for tests that need one with no libuv handle behind it: nothing
// accepts on it but whoever is given the fd, and closing it leaves its file where it is.
import * as N from '../../daemon/kernel/native';

/** A Unix stream socket bound at `path`, listening with `backlog` unless that is undefined; the caller closes the fd. */
export function unixSocketAt(path: string, backlog?: number): number {
  const fd = N.socket(N.AF_UNIX, N.SOCK_STREAM | N.SOCK_CLOEXEC, 0);
  try {
    const { addr, len } = N.unixSockaddr(path);
    N.bind(fd, addr, len);
    if (backlog !== undefined) N.listen(fd, backlog);
  } catch (err) {
    N.closeQuietly(fd);
    throw err;
  }
  return fd;
}
