// Saved connection states built by hand, for tests that need one without a kernel.
import { STATE_VERSION, SavedConnection, TcpState } from '../../protocol/saved-state';

/**
 * An ESTABLISHED IPv4 connection with empty queues and a repair window, every field set, most of them to
 * something other than the proto default (so that a round trip that dropped one would show);
 * `overrides` replaces whole fields.
 */
export function savedConnection(overrides: Partial<SavedConnection> = {}): SavedConnection {
  return {
    version: STATE_VERSION,
    state: TcpState.ESTABLISHED,
    socketFamily: 'ipv4',
    local: { family: 'ipv4', ip: '10.1.2.3', port: 43210 },
    remote: { family: 'ipv4', ip: '192.168.200.7', port: 443 },
    inqSeq: 0xfffffff0,
    outqSeq: 0x80000001,
    inqLen: 0,
    outqLen: 0,
    unsentLen: 0,
    mssClamp: 1448,
    tcpOptions: 7,
    sndWscale: 7,
    rcvWscale: 9,
    timestamp: 0xdeadbeef,
    window: { sndWl1: 0xffffffff, sndWnd: 65535 << 7, maxWindow: 4194304, rcvWnd: 0, rcvWup: 12345 },
    recvQueue: Buffer.alloc(0),
    sendQueue: Buffer.alloc(0),
    options: {
      reuseAddr: true,
      noDelay: true,
      cork: false,
      keepAlive: true,
      keepIdle: 7200,
      keepIntvl: 75,
      keepCnt: 9,
      userTimeout: 30000,
      congestion: 'cubic',
      sndBuf: 87040,
      rcvBuf: 131072,
      tos: 0x10,
      mark: 0x1234,
      bufLock: 1,
      ttl: 33,
      priority: 5,
      rcvLowat: 3,
      rcvTimeoutUs: 1_500_000,
      sndTimeoutUs: 2_000_000,
      lingerSeconds: 0,
      reusePort: true,
      v6only: false,
      freebind: true,
      bindDevice: 'eth1',
      notsentLowat: 16384,
      windowClamp: 65000,
    },
    ...overrides,
  };
}
