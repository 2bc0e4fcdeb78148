// The process CRIU dumps and restores in bench/criu.ts: the owner of N connections with the full-queue
// workload of bench/workload.ts, written for CRIU: plain node:net, no stdio (criu dumps a session
// leader with no pipes to outside), driven by signals, its state in a file.
//
// Connection i is the one from client port 40000 + i (the clients fixture of lab/fixtures/multi.ts):
// it sends multi stream 1000+i and checks every byte it reads against stream 2000+i.
//  - at start: reads everything; streams on every third connection (index % 3 == 0), as fast as the
//    kernel takes it (write until write() says the buffer is full, then wait for 'drain').
//  - SIGUSR1 (fill): stops reading: its receive queues fill; the streaming goes on.
//  - SIGUSR2 (drain, after the restore): reads again, stops streaming, sends `explicitBytes` more on
//    every connection, and writes its status to the status file every 100 ms.
// Writes its pid to the ready file once it listens; exits after 15 minutes at the latest, should the
// bench be killed before it.
import { renameSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { clientSeed, fillMulti, serverSeed } from '../lab/multi-data';

export interface HolderConfig {
  ip: string;
  port: number;
  count: number;
  readyFile: string;
  statusFile: string;
  /** the client port of connection i is clientPortBase + i */
  clientPortBase: number;
  /** every sendStride-th connection streams at start */
  sendStride: number;
  explicitBytes: number;
}

export interface HolderConn {
  index: number;
  sent: number;
  received: number;
  mismatchAt: number;
  error: string | null;
  eof: boolean;
}

export interface HolderStatus {
  pid: number;
  connections: HolderConn[];
}

const CHUNK = 64 * 1024;

interface Conn extends HolderConn {
  socket: net.Socket;
  streaming: boolean;
  sendSeed: number;
  recvSeed: number;
}

function main(): void {
  const cfg = JSON.parse(process.argv[2]) as HolderConfig;
  const conns: Conn[] = [];
  const expected = Buffer.alloc(CHUNK);

  const pumpOut = (c: Conn): void => {
    while (c.streaming && !c.error) {
      const out = Buffer.allocUnsafe(CHUNK);
      fillMulti(c.sendSeed, c.sent, out, 0, CHUNK);
      c.sent += CHUNK;
      if (!c.socket.write(out)) return; // 'drain' calls again
    }
  };

  const server = net.createServer({ pauseOnConnect: false }, (socket) => {
    const index = (socket.remotePort ?? 0) - cfg.clientPortBase;
    const c: Conn = {
      index,
      sent: 0,
      received: 0,
      mismatchAt: -1,
      error: null,
      eof: false,
      socket,
      streaming: index % cfg.sendStride === 0,
      sendSeed: serverSeed(index),
      recvSeed: clientSeed(index),
    };
    conns.push(c);
    socket.on('error', (err) => {
      c.error = err.message;
    });
    socket.on('end', () => {
      c.eof = true;
    });
    socket.on('data', (data: Buffer) => {
      for (let off = 0; off < data.length && c.mismatchAt < 0; off += CHUNK) {
        const n = Math.min(CHUNK, data.length - off);
        fillMulti(c.recvSeed, c.received + off, expected, 0, n);
        if (expected.compare(data, off, off + n, 0, n) !== 0) {
          let i = 0;
          while (i < n && expected[i] === data[off + i]) i++;
          c.mismatchAt = c.received + off + i;
        }
      }
      c.received += data.length;
    });
    socket.on('drain', () => pumpOut(c));
    pumpOut(c);
    if (conns.length >= cfg.count) server.close();
  });
  server.listen({ host: cfg.ip, port: cfg.port, backlog: 65535 }, () => writeFileSync(cfg.readyFile, String(process.pid)));

  const writeStatus = (): void => {
    const status: HolderStatus = {
      pid: process.pid,
      connections: conns.map(({ index, sent, received, mismatchAt, error, eof }) => ({ index, sent, received, mismatchAt, error, eof })),
    };
    // Written whole, then renamed: the bench never reads half a file.
    writeFileSync(`${cfg.statusFile}.tmp`, JSON.stringify(status));
    renameSync(`${cfg.statusFile}.tmp`, cfg.statusFile);
  };
  process.on('SIGUSR1', () => {
    for (const c of conns) c.socket.pause();
  });
  process.on('SIGUSR2', () => {
    for (const c of conns) {
      c.streaming = false;
      c.socket.resume();
      const out = Buffer.allocUnsafe(cfg.explicitBytes);
      fillMulti(c.sendSeed, c.sent, out, 0, cfg.explicitBytes);
      c.sent += cfg.explicitBytes;
      c.socket.write(out);
    }
    writeStatus();
    setInterval(writeStatus, 100);
  });
  setTimeout(() => process.exit(0), 15 * 60_000).unref();
  setInterval(() => undefined, 60_000);
}

main();
