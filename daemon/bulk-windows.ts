// HTTP/2 flow-control windows sized for bulk transfer on both ends of soccrd's gRPC calls. With the
// default 64 KiB windows a Checkpoint or Restore stream waits for a WINDOW_UPDATE round trip every
// 64 KiB of queue bytes; a window of a few MiB keeps the socket busy.
import type * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

/** Receive window of a connection and of each stream on it. */
export const BULK_WINDOW_BYTES = 16 * 1024 * 1024;

/** grpc-js channel options for a client that streams queue bytes (the window it advertises as a receiver). */
export const BULK_CHANNEL_OPTIONS: grpc.ChannelOptions = { 'grpc-node.flow_control_window': BULK_WINDOW_BYTES };

interface ServerInternals {
  commonServerOptions?: http2.ServerOptions;
  _setupHandlers?: (server: http2.Http2Server | null, ...rest: unknown[]) => void;
}

/**
 * Gives every HTTP/2 session the server accepts large receive windows, per stream (the SETTINGS it
 * sends) and per connection (a WINDOW_UPDATE at once). grpc-js (1.14) has no server option for either:
 * this reaches into two of its internals and leaves the server as it was when they are not there.
 * Call before the server binds or injects its first connection. Returns whether it applied.
 */
export function widenServerWindows(server: grpc.Server, bytes: number = BULK_WINDOW_BYTES): boolean {
  const s = server as unknown as ServerInternals;
  const common = s.commonServerOptions;
  const setup = s._setupHandlers;
  if (typeof common !== 'object' || common === null || typeof setup !== 'function') return false;
  common.settings = { ...common.settings, initialWindowSize: bytes };
  s._setupHandlers = function (this: unknown, h2: http2.Http2Server | null, ...rest: unknown[]): void {
    h2?.on('session', (session: http2.ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(bytes);
      } catch {
        // a session already closing
      }
    });
    setup.call(this, h2, ...rest);
  };
  return true;
}
