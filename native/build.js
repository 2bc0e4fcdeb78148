#!/usr/bin/env node
// Builds build/libsoccr_batch.so from native/soccr_batch.c (run by `npm install` and `npm run build`).
// The library lets the daemon make many kernel calls per FFI call; without it the daemon makes them
// one FFI call each (slower, same result). So a missing compiler is a warning, never a failed install.
// Rebuilds only when the source is newer than the library. CC overrides the compiler (default cc).
'use strict';
const { spawnSync } = require('node:child_process');
const { mkdirSync, statSync, renameSync, rmSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const src = path.join(root, 'native', 'soccr_batch.c');
const out = path.join(root, 'build', 'libsoccr_batch.so');
const cc = process.env.CC || 'cc';

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

if (mtime(out) >= mtime(src)) process.exit(0);
mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const r = spawnSync(cc, ['-O2', '-Wall', '-shared', '-fPIC', '-o', tmp, src], { encoding: 'utf8', timeout: 120_000 });
if (r.error || r.status !== 0) {
  rmSync(tmp, { force: true });
  const why = r.error ? (r.error.code === 'ENOENT' ? `no C compiler (${cc}) found` : r.error.message) : `${cc} failed:\n${r.stderr.trim()}`;
  process.stderr.write(
    `soccrd: could not build ${path.relative(root, out)}: ${why}\n` +
      'soccrd: the daemon will make one FFI call per kernel call (slower, same results). To build the\n' +
      'soccrd: batch library: install a C compiler (Debian: apt-get install gcc), then run npm install again.\n',
  );
  process.exit(0);
}
renameSync(tmp, out); // atomic: a running daemon never loads a half-written library
process.stdout.write(`soccrd: built ${path.relative(root, out)}\n`);
