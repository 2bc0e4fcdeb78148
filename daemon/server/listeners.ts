// The daemon's listeners. Unix sockets and insecure loopback TCP are accepted here, by node:net, so that
// each connection can be tied to who made it (SO_PEERCRED on Unix sockets) before it is handed to
// grpc-js through a connection injector; TLS listeners are grpc-js's own (mTLS: the handshake requires
// a client certificate signed by the configured CA).
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { Server as NetServer, Socket, createServer } from 'node:net';
import { dirname } from 'node:path';
import { ConnectionRegistry, splitHostPort } from './auth';
import type { Logger } from '../log';
import { PeerCredentials, peerCredentials } from '../kernel/native';
import { claimSocketPath, restrictSocketFile } from '../kernel/socket-file';
import { errorMessage } from '../../protocol/errors';

export interface Listener {
  /** the address as configured */
  address: string;
  /** where it listens: a TCP port 0 replaced by the port the kernel chose */
  bound: string;
  /** stops accepting (connections already accepted belong to the grpc server) */
  close(): void;
}

/** The fd of an accepted node:net socket (libuv's handle), or undefined. */
function socketFd(s: Socket): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Starts listening (synchronously: a Unix socket file exists when this returns) and resolves once it does. */
function listenNet(server: NetServer, options: { path: string } | { host: string; port: number } | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * A server for Unix socket connections: every connection carries its peer's credentials into
 * `registry`; one whose credentials cannot be read is still served, and each of its calls refused as
 * UNAUTHENTICATED.
 */
function unixServer(path: string, injector: grpc.ConnectionInjector, registry: ConnectionRegistry, log: Logger): NetServer {
  const server = createServer((sock) => {
    let cred: PeerCredentials | undefined;
    const fd = socketFd(sock);
    try {
      if (fd === undefined) throw new Error('no fd on the accepted socket');
      cred = peerCredentials(fd);
    } catch (err) {
      log.warn('cannot read the credentials of a Unix socket peer', { path, error: err });
    }
    registry.tag(sock, { transport: 'unix', cred });
    log.debug('connection', { path, peer: cred ? `uid=${cred.uid} gid=${cred.gid} pid=${cred.pid}` : 'unknown' });
    injector.injectConnection(sock);
  });
  server.on('error', (err) => log.error('Unix listener failed', { path, error: err }));
  return server;
}

/**
 * A Unix socket at `path` (its directory created if missing), created 0600 and then given `gid` and
 * `mode`, so it is never reachable more widely than configured (see unixServer for who calls). A socket
 * file whose listener is gone is replaced; anything else at the path is an error (claimSocketPath).
 */
export async function listenUnix(
  path: string,
  opts: { mode: number; gid?: number },
  injector: grpc.ConnectionInjector,
  registry: ConnectionRegistry,
  log: Logger,
): Promise<Listener> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (await claimSocketPath(path)) log.info('removed a stale socket file', { path });
  const server = unixServer(path, injector, registry, log);
  // Created 0600 (node binds within listen()); the umask is the process's, so it is put back at once.
  const umask = process.umask(0o177);
  let listening: Promise<void>;
  try {
    listening = listenNet(server, { path });
  } finally {
    process.umask(umask);
  }
  await listening;
  try {
    restrictSocketFile(path, opts.mode, opts.gid);
  } catch (err) {
    server.close();
    throw err;
  }
  return { address: `unix://${path}`, bound: `unix://${path}`, close: () => server.close() };
}

/** A server for plain TCP connections, each tagged as insecure loopback TCP in `registry`. */
function insecureTcpServer(address: string, injector: grpc.ConnectionInjector, registry: ConnectionRegistry, log: Logger): NetServer {
  const server = createServer((sock) => injectInsecure(sock, injector, registry));
  server.on('error', (err) => log.error('TCP listener failed', { address, error: err }));
  return server;
}

function injectInsecure(sock: Socket, injector: grpc.ConnectionInjector, registry: ConnectionRegistry): void {
  registry.tag(sock, { transport: 'insecure-tcp', remote: `${sock.remoteAddress ?? '?'}:${String(sock.remotePort ?? '?')}` });
  injector.injectConnection(sock);
}

/** Plain TCP (only ever on a loopback address: settings refuse anything else). */
export async function listenInsecureTcp(address: string, injector: grpc.ConnectionInjector, registry: ConnectionRegistry, log: Logger): Promise<Listener> {
  const { host, port } = splitHostPort(address);
  const server = insecureTcpServer(address, injector, registry, log);
  await listenNet(server, { host, port });
  const a = server.address();
  const boundPort = a && typeof a === 'object' ? a.port : port;
  return { address, bound: hostPort(host, boundPort), close: () => server.close() };
}

// ---- sockets passed by systemd (socket activation) ----------------------------------------------

/**
 * An inherited listening Unix socket (`path` as getsockname gives it), served exactly like one of
 * listenUnix: peer credentials and the same authorization. Its mode and group are the .socket unit's
 * (SocketMode=, SocketGroup=).
 */
export async function listenInheritedUnix(
  fd: number,
  path: string,
  injector: grpc.ConnectionInjector,
  registry: ConnectionRegistry,
  log: Logger,
): Promise<Listener> {
  const label = path || `fd ${fd}`;
  const server = unixServer(label, injector, registry, log);
  await listenNet(server, { fd });
  return { address: `fd://${fd}`, bound: path ? `unix://${path}` : `unix:fd${fd}`, close: () => server.close() };
}

/** How an inherited TCP socket is served, from the daemon's settings and the address it is bound to. */
export type InheritedTcpAccess =
  | { kind: 'tls'; injector: grpc.ConnectionInjector }
  | { kind: 'insecure'; injector: grpc.ConnectionInjector; registry: ConnectionRegistry }
  | { kind: 'refused'; reason: string };

/**
 * An inherited listening TCP socket. The same rules as a configured TCP address: with TLS settings,
 * mTLS (the handshake is done by grpc-js on the injected connection, which is never tagged, so calls are
 * authorized by the client certificate like those of listenTls); without them, plain TCP only with
 * --insecure and only on a loopback address; otherwise it is refused (the error says why).
 */
export async function listenInheritedTcp(fd: number, access: (host: string) => InheritedTcpAccess, log: Logger): Promise<Listener> {
  let serve: (sock: Socket) => void = (sock) => sock.destroy();
  const server = createServer((sock) => serve(sock));
  server.on('error', (err) => log.error('TCP listener failed', { fd, error: err }));
  await listenNet(server, { fd });
  const a = server.address();
  if (!a || typeof a !== 'object') {
    server.close();
    throw new Error(`fd ${fd}: not a bound TCP socket`);
  }
  const bound = hostPort(a.address, a.port);
  const how = access(a.address);
  if (how.kind === 'refused') {
    server.close();
    throw new Error(`${bound}: ${how.reason}`);
  }
  serve = how.kind === 'tls' ? (sock) => how.injector.injectConnection(sock) : (sock) => injectInsecure(sock, how.injector, how.registry);
  return { address: `fd://${fd}`, bound, close: () => server.close() };
}

/** A grpc-js TLS listener requiring a verified client certificate. */
export async function listenTls(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<Listener> {
  const { host } = splitHostPort(address);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p)));
  });
  const bound = hostPort(host, port);
  const close = (): void => {
    try {
      server.unbind(bound);
    } catch {
      // the server's shutdown closes it all the same
    }
  };
  return { address, bound, close };
}

/** mTLS server credentials from PEM files: the daemon's certificate and key, and the CA that signs clients. */
export function tlsServerCredentials(files: { cert: string; key: string; clientCa: string }): grpc.ServerCredentials {
  const read = (what: string, f: string): Buffer => {
    try {
      return readFileSync(f);
    } catch (err) {
      throw new Error(`${what} ${f}: ${errorMessage(err)}`, { cause: err });
    }
  };
  const cert = read('--tls-cert', files.cert);
  const key = read('--tls-key', files.key);
  const ca = read('--tls-client-ca', files.clientCa);
  return grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true);
}

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A group name or number to its gid (through NSS: `getent group`). */
export function resolveGroup(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  let line: string;
  try {
    line = execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    // not found, or no getent: look in /etc/group
    try {
      line =
        readFileSync('/etc/group', 'utf8')
          .split('\n')
          .find((l) => l.split(':')[0] === group) ?? '';
    } catch {
      line = '';
    }
  }
  const gid = Number(line.trim().split(':')[2]);
  if (!line.trim() || !Number.isInteger(gid)) throw new Error(`--socket-group ${group}: no such group`);
  return gid;
}
