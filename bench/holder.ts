// The process CRIU dumps and restores in bench/migration.ts: listens on ip:port, accepts `count`
// connections and holds them, reading whatever arrives. Writes its pid to the ready file once it
// listens; has no stdio (criu dumps a session leader with no pipes to outside); ends after 15 minutes
// at the latest, should the bench be killed before it.
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';

const [ip, port, count, readyFile] = process.argv.slice(2);
const sockets: net.Socket[] = [];
const server = net.createServer((s) => {
  sockets.push(s);
  s.on('error', () => undefined);
  s.on('data', () => undefined);
  if (sockets.length >= Number(count)) server.close();
});
server.listen({ host: ip, port: Number(port), backlog: 65535 }, () => writeFileSync(readyFile, String(process.pid)));
setTimeout(() => process.exit(0), 15 * 60_000).unref();
setInterval(() => undefined, 60_000);
