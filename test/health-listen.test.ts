// --health-listen: the gRPC health service alone on a plaintext TCP port, as kubelet's grpc probes need
// it (they speak neither Unix sockets nor TLS); the SocketRepairService API is not served there.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SoccrClient } from '../client';
import { DaemonProcess, expectStatus } from '../lab/daemon';

/** grpc.health.v1.Health/Check of service '' by hand: the request is empty, the answer `status` (field 1). */
function healthCheck(address: string): Promise<Buffer> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      { deadline: Date.now() + 10_000 },
      (err, res) => (err || !res ? reject(err ?? new Error('no answer')) : resolve(res)),
    );
  }).finally(() => client.close());
}

describe('--health-listen', function () {
  let daemon: DaemonProcess | undefined;
  after(async () => {
    await daemon?.cleanup();
  });

  it('serves grpc.health.v1 alone in plaintext on TCP, and SERVING until SIGTERM', async function () {
    daemon = await DaemonProcess.start(['--health-listen', '127.0.0.1:0']);
    const { health } = JSON.parse(readFileSync(join(daemon.stateDir, 'daemon.json'), 'utf8')) as { health?: string };
    assert.match(health ?? '', /^127\.0\.0\.1:[1-9]\d*$/, 'daemon.json names the bound port');
    const address = health as string;
    assert.deepEqual([...(await healthCheck(address))], [0x08, 0x01], 'status SERVING');
    // the API itself is not on this port (it is on the Unix socket, which names the caller)
    const plain = new SoccrClient(address, { timeoutMs: 10_000 });
    const onSocket = new SoccrClient(daemon.address, { timeoutMs: 10_000 });
    try {
      await expectStatus(plain.getVersion(), grpc.status.UNIMPLEMENTED, 'GetVersion on the health port');
      assert.ok((await onSocket.getVersion()).version, 'GetVersion on the Unix socket');
    } finally {
      plain.close();
      onSocket.close();
    }
    assert.equal(await daemon.stop(), 0);
    await assert.rejects(healthCheck(address), 'nothing answers once the daemon is gone');
  });
});
