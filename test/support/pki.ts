// Certificates for the mTLS tests, made with openssl: CAs and leaves signed by them, and clients that
// present them.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SoccrClient, tlsCredentials } from '../../client/client';

export class Pki {
  constructor(readonly dir: string) {}

  private openssl(args: string[]): void {
    const r = spawnSync('openssl', args, { cwd: this.dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr || (r.error?.message ?? 'failed without a message')}`);
  }

  path(name: string, ext: 'crt' | 'key'): string {
    return join(this.dir, `${name}.${ext}`);
  }

  ca(name: string): void {
    this.openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
    ]);
  }

  /** A leaf certificate `name` signed by CA `ca`, subject CN `cn`, with these X.509v3 extension lines. */
  leaf(ca: string, name: string, cn: string, extensions: string[]): void {
    this.openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${cn}`,
    ]);
    writeFileSync(join(this.dir, `${name}.ext`), ['basicConstraints=CA:FALSE', 'keyUsage=digitalSignature', ...extensions, ''].join('\n'));
    const serial = `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    this.openssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-set_serial',
      serial,
      '-days',
      '2',
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    ]);
  }

  client(name: string, opts: { ca?: boolean; cert?: boolean } = {}): SoccrClientCreds {
    return {
      ca: opts.ca === false ? undefined : this.path('ca', 'crt'),
      cert: opts.cert === false ? undefined : this.path(name, 'crt'),
      key: opts.cert === false ? undefined : this.path(name, 'key'),
    };
  }
}

export interface SoccrClientCreds {
  ca?: string;
  cert?: string;
  key?: string;
}

export function tlsClient(address: string, files: SoccrClientCreds & { serverName?: string }): SoccrClient {
  return new SoccrClient(address, { credentials: tlsCredentials(files), timeoutMs: 10_000 });
}
