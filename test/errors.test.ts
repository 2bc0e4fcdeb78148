// Errors typed end to end without a daemon: a gRPC server in this process answers with the daemon's own
// errorStatus (protocol/error-status.ts), and the client library rebuilds the SoccrError from the status
// and its trailers (kind, errno, status code), for every kind. Needs no privileges. The same check
// against the real daemon is in daemon.test.ts ("bad calls get their status codes").
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { SoccrClient, SoccrError, describeError, errorMessage, isServiceError, soccrErrorFromStatus, soccrErrorOf } from '../client';
import type { ErrorKind } from '../client';
import { ERRNO_TRAILER, ERROR_DOMAIN, KIND_TRAILER, STATUS_BY_KIND, encodeStatusDetails, errorInfoOf, errorStatus } from '../protocol/error-status';
import { SyscallError } from '../protocol/errors';
import { PROTO_DIR, SERVICE_NAME, loadPackageDefinition } from '../protocol/proto';

const EPERM = os.constants.errno.EPERM;
const ESRCH = os.constants.errno.ESRCH;

/** A SocketRepairService server whose GetVersion fails with whatever `refusal` holds, through errorStatus. */
class RefusingServer {
  refusal: unknown = new Error('unset');
  readonly address: string;
  private readonly server = new grpc.Server();

  constructor(dir: string) {
    this.address = `unix://${path.join(dir, 'refusing.sock')}`;
    const def = loadPackageDefinition()[SERVICE_NAME] as protoLoader.ServiceDefinition;
    this.server.addService(def, {
      GetVersion: (_call: grpc.ServerUnaryCall<object, object>, cb: grpc.sendUnaryData<object>) => cb(errorStatus(this.refusal), null),
    });
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync(this.address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

/** The error GetVersion rejects with once the server refuses with `refusal`. */
async function refusedWith(server: RefusingServer, client: SoccrClient, refusal: unknown): Promise<grpc.ServiceError> {
  server.refusal = refusal;
  try {
    await client.getVersion();
  } catch (err) {
    assert.ok(isServiceError(err), `not a gRPC status: ${String(err)}`);
    return err;
  }
  assert.fail('GetVersion succeeded');
}

describe('errors typed end to end', function () {
  let dir: string;
  let server: RefusingServer;
  let client: SoccrClient;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'soccr-errors-'));
    server = new RefusingServer(dir);
    await server.start();
    client = new SoccrClient(server.address, { timeoutMs: 10_000 });
  });
  after(async () => {
    client.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every kind comes back as a SoccrError with its kind, errno and status code', async function () {
    for (const kind of Object.keys(STATUS_BY_KIND) as ErrorKind[]) {
      const cause = new SyscallError('pidfd_open', ESRCH, 'pid 4242');
      const err = await refusedWith(server, client, new SoccrError(kind, `refused as ${kind}`, cause));
      assert.equal(err.code, STATUS_BY_KIND[kind], kind);
      const typed = soccrErrorFromStatus(err);
      assert.ok(typed instanceof SoccrError, kind);
      assert.equal(typed.kind, kind);
      assert.equal(typed.errno, 'ESRCH');
      assert.equal(typed.grpcCode, STATUS_BY_KIND[kind]);
      assert.equal(typed.message, `refused as ${kind}`);
      assert.equal(typed.cause, err);
      assert.equal(soccrErrorOf(err)?.kind, kind);
      assert.equal(describeError(err), `${grpc.status[STATUS_BY_KIND[kind]]}: refused as ${kind} (errno ESRCH)`);
    }
  });

  it('every error also carries a google.rpc.Status whose ErrorInfo names its kind, errno, session and connection', async function () {
    // Decoded here with a Root of its own from the .proto files, as another program would read them.
    const root = new protobuf.Root();
    root.resolvePath = (_o: string, target: string): string => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
    root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
    const Status = root.lookupType('google.rpc.Status');
    const Info = root.lookupType('google.rpc.ErrorInfo');
    const detailsOf = (
      err: grpc.ServiceError,
    ): { code: number; message: string; infos: Array<{ reason: string; domain: string; metadata: Record<string, string> }> } => {
      const bin = err.metadata.get('grpc-status-details-bin');
      assert.equal(bin.length, 1, 'one grpc-status-details-bin trailer');
      assert.ok(Buffer.isBuffer(bin[0]));
      const st = Status.toObject(Status.decode(bin[0]), { defaults: true }) as {
        code: number;
        message: string;
        details: Array<{ type_url: string; value: Uint8Array }>;
      };
      assert.deepEqual(
        st.details.map((d) => d.type_url), // protobufjs's built-in Any keeps the proto's field names
        ['type.googleapis.com/google.rpc.ErrorInfo'],
      );
      const infos = st.details.map(
        (d) => Info.toObject(Info.decode(d.value), { defaults: true }) as { reason: string; domain: string; metadata: Record<string, string> },
      );
      return { code: st.code, message: st.message, infos };
    };
    for (const kind of Object.keys(STATUS_BY_KIND) as ErrorKind[]) {
      const refusal = new SoccrError(kind, `refused as ${kind}`, new SyscallError('pidfd_open', ESRCH, 'pid 4242'));
      refusal.session = 'src-7';
      refusal.connection = '12:34567';
      const err = await refusedWith(server, client, refusal);
      const d = detailsOf(err);
      assert.deepEqual([d.code, d.message], [err.code, err.details], kind);
      assert.deepEqual(d.infos, [{ reason: kind, domain: ERROR_DOMAIN, metadata: { errno: 'ESRCH', session: 'src-7', connection: '12:34567' } }], kind);
      // The client library reads the same from the details.
      const typed = soccrErrorOf(err);
      assert.deepEqual([typed?.kind, typed?.errno, typed?.session, typed?.connection], [kind, 'ESRCH', 'src-7', '12:34567'], kind);
    }
    const plain = detailsOf(await refusedWith(server, client, new SoccrError('SESSION_BUSY', 'busy')));
    assert.deepEqual(plain.infos, [{ reason: 'SESSION_BUSY', domain: ERROR_DOMAIN, metadata: {} }]);
    const kernel = detailsOf(await refusedWith(server, client, new SyscallError('setns', EPERM)));
    assert.deepEqual([kernel.code, kernel.infos], [grpc.status.PERMISSION_DENIED, [{ reason: 'KERNEL', domain: ERROR_DOMAIN, metadata: { errno: 'EPERM' } }]]);
    const untyped = detailsOf(await refusedWith(server, client, new Error('something unforeseen')));
    assert.deepEqual([untyped.code, untyped.infos], [grpc.status.INTERNAL, [{ reason: 'INTERNAL', domain: ERROR_DOMAIN, metadata: {} }]]);
  });

  it('the details alone, as a server in another language sends them, are read; another domain is not ours', function () {
    const status = (domain: string): grpc.ServiceError => {
      const metadata = new grpc.Metadata();
      const info = { reason: 'DELIVERY', domain, metadata: { session: 'rst-2' } };
      metadata.set('grpc-status-details-bin', encodeStatusDetails(grpc.status.FAILED_PRECONDITION, 'the receiver refused', info));
      return Object.assign(new Error('9 FAILED_PRECONDITION: the receiver refused'), {
        code: grpc.status.FAILED_PRECONDITION,
        details: 'the receiver refused',
        metadata,
      });
    };
    const typed = soccrErrorFromStatus(status(ERROR_DOMAIN));
    assert.deepEqual([typed?.kind, typed?.session, typed?.grpcCode], ['DELIVERY', 'rst-2', grpc.status.FAILED_PRECONDITION]);
    assert.equal(errorInfoOf(status('example.com'))?.domain, 'example.com');
    assert.equal(soccrErrorFromStatus(status('example.com')), undefined);
  });

  it('a failed hand-over is FAILED_PRECONDITION, not the UNAVAILABLE of a daemon that is down', function () {
    assert.equal(STATUS_BY_KIND.DELIVERY, grpc.status.FAILED_PRECONDITION);
  });

  it('a refusal without errno has none; a bare failed syscall is KERNEL with its errno (PERMISSION_DENIED for EPERM)', async function () {
    const busy = soccrErrorOf(await refusedWith(server, client, new SoccrError('SESSION_BUSY', 'session src-1 is handing over')));
    assert.deepEqual([busy?.kind, busy?.errno, busy?.grpcCode], ['SESSION_BUSY', undefined, grpc.status.FAILED_PRECONDITION]);

    const raw = await refusedWith(server, client, new SyscallError('setns', EPERM));
    const typed = soccrErrorOf(raw);
    assert.deepEqual([typed?.kind, typed?.errno, typed?.grpcCode], ['KERNEL', 'EPERM', grpc.status.PERMISSION_DENIED]);
    assert.equal(describeError(raw), 'PERMISSION_DENIED: setns failed: EPERM'); // the errno is in the message already
  });

  it('an error the daemon did not type is INTERNAL, with no kind to rebuild', async function () {
    const err = await refusedWith(server, client, new Error('something unforeseen'));
    assert.equal(err.code, grpc.status.INTERNAL);
    assert.equal(soccrErrorOf(err), undefined);
    assert.equal(describeError(err), 'INTERNAL: something unforeseen');
  });

  it("grpc-js's own status (nobody listening) is no SoccrError; describeError still names the code", async function () {
    const nobody = new SoccrClient(`unix://${path.join(dir, 'nobody.sock')}`, { timeoutMs: 2000 });
    try {
      const err = await nobody.getVersion().then(
        () => assert.fail('GetVersion succeeded'),
        (e: unknown) => e,
      );
      assert.ok(isServiceError(err));
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.equal(soccrErrorOf(err), undefined);
      assert.match(describeError(err), /^UNAVAILABLE: /);
    } finally {
      nobody.close();
    }
  });

  it('trailers as a stand-in or a newer daemon may send them: an unknown kind is not rebuilt; an errno alone is still described', function () {
    const status = (kind: string | undefined, errno: string | undefined): grpc.ServiceError => {
      const metadata = new grpc.Metadata();
      if (kind !== undefined) metadata.set(KIND_TRAILER, kind);
      if (errno !== undefined) metadata.set(ERRNO_TRAILER, errno);
      return Object.assign(new Error('7 PERMISSION_DENIED: setns failed'), { code: grpc.status.PERMISSION_DENIED, details: 'setns failed', metadata });
    };
    assert.equal(soccrErrorFromStatus(status('A_KIND_FROM_THE_FUTURE', undefined)), undefined);
    assert.equal(soccrErrorFromStatus(status(undefined, 'EPERM')), undefined);
    assert.equal(describeError(status(undefined, 'EPERM')), 'PERMISSION_DENIED: setns failed (errno EPERM)');
    assert.equal(soccrErrorFromStatus(status('PERMISSION', 'EPERM'))?.kind, 'PERMISSION');
  });

  it('describeError of errors raised here, and errorMessage of anything thrown', function () {
    assert.equal(
      describeError(new SoccrError('INVALID_STATE', 'checkpoint stream ended\nwithout its end frame')),
      'INVALID_STATE: checkpoint stream ended without its end frame',
    );
    assert.equal(describeError(new RangeError('pid must be positive')), 'pid must be positive');
    assert.equal(errorMessage(new Error('boom')), 'boom');
    assert.equal(errorMessage('a string'), 'a string');
    assert.equal(errorMessage(42), '42');
    assert.equal(errorMessage(undefined), 'undefined');
  });
});
