// soccrctl's global options (daemon address, --json, --timeout, --tls-*) and the client they make.
import type { Command } from 'commander';
import { SoccrClient, SoccrClientOptions, tlsCredentials } from '../client';

export interface GlobalOptions {
  daemon: string;
  json: boolean;
  timeout: number;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

/** mTLS to a TCP daemon when any --tls-* option is given; insecure otherwise (a Unix socket). */
export function connectionOptions(g: GlobalOptions): Pick<SoccrClientOptions, 'credentials' | 'channelOptions'> {
  const given = (v: string | undefined): string | undefined => (v === '' ? undefined : v); // an empty $SOCCRD_TLS_* is no option
  const [ca, cert, key, serverName] = [given(g.tlsCa), given(g.tlsCert), given(g.tlsKey), given(g.tlsServerName)];
  if (ca === undefined && cert === undefined && key === undefined && serverName === undefined) return {};
  const credentials = tlsCredentials({ ca, cert, key, serverName });
  // The override also sends the name in SNI (the credentials alone check it, e.g. in migrate).
  return { credentials, channelOptions: serverName ? { 'grpc.ssl_target_name_override': serverName } : undefined };
}

/** Runs `fn` with a client of the daemon the global options name, closed afterwards. */
export async function withClient<T>(cmd: Command, fn: (client: SoccrClient, g: GlobalOptions) => Promise<T>): Promise<T> {
  const g = globals(cmd);
  const client = new SoccrClient(g.daemon, { timeoutMs: g.timeout, ...connectionOptions(g) });
  try {
    return await fn(client, g);
  } finally {
    client.close();
  }
}
