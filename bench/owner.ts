// Owner fixture for bench/engine.ts: listens on 127.0.0.1, accepts connections without ever reading
// from them (pauseOnConnect: libuv never starts reading), and writes QUEUE_BYTES bytes on each.
// Prints {"port":P} once listening. Exits when its stdin closes, so it never outlives the bench.
import * as net from 'node:net';

const queueBytes = Number(process.argv[2] ?? '100');
const sockets: net.Socket[] = []; // held so that nothing is collected or closed

const server = net.createServer({ pauseOnConnect: true }, (s) => {
  sockets.push(s);
  s.on('error', () => undefined);
  s.write(Buffer.alloc(queueBytes, 0x6f)); // 'o'
});
server.on('error', (err) => {
  process.stderr.write(`owner: ${err.message}\n`);
  process.exit(1);
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const a = server.address();
  if (a === null || typeof a === 'string') process.exit(1);
  process.stdout.write(`${JSON.stringify({ port: a.port })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
