// The baseline of bench/queues.ts: a trivial grpc-js service in its own process (as soccrd is), on a
// Unix socket, with no protobuf: `Down` streams buffers of the sizes it is asked for (like Checkpoint),
// `Up` takes a stream of buffers and answers with their byte count (like Restore). Prints "ready" once
// it serves; exits when its stdin closes.
import * as grpc from '@grpc/grpc-js';

const identity = (b: Buffer): Buffer => b;

export const PIPE_SERVICE: grpc.ServiceDefinition = {
  Down: {
    path: '/bench.Pipe/Down',
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Up: {
    path: '/bench.Pipe/Up',
    requestStream: true,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** Same message size limits as soccrd (daemon/main.ts): 8 MiB. */
export const PIPE_MESSAGE_LIMITS = { 'grpc.max_receive_message_length': 8 << 20, 'grpc.max_send_message_length': 8 << 20 };

function main(): void {
  const socketPath = process.argv[2];
  const payload = Buffer.alloc(1 << 20, 0x5a);
  const server = new grpc.Server(PIPE_MESSAGE_LIMITS);
  server.addService(PIPE_SERVICE, {
    // The request is the chunk sizes, as 32-bit little-endian integers.
    Down: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const req = call.request;
      let i = 0;
      const pump = (): void => {
        while (i < req.length / 4) {
          const size = req.readUInt32LE(4 * i++);
          const chunk = size <= payload.length ? payload.subarray(0, size) : Buffer.alloc(size, 0x5a);
          if (!call.write(chunk)) {
            call.once('drain', pump);
            return;
          }
        }
        call.end();
      };
      pump();
    },
    Up: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      let bytes = 0;
      call.on('data', (b: Buffer) => (bytes += b.length));
      call.on('end', () => {
        const out = Buffer.alloc(8);
        out.writeDoubleLE(bytes);
        callback(null, out);
      });
    },
  });
  server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      process.stderr.write(`grpc-pipe: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write('ready\n');
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

if (require.main === module) main();
