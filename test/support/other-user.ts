// Programs the tests run as another user (uid 65534) need files that user can read. The checkout may be
// closed to it (a clone under /root, or in any 0700 directory), so such a program runs from a copy: the
// built tree, the protos, package.json and the production dependencies, in a temporary directory owned
// by that user and closed to everyone else. Where even that cannot work (node itself not executable by
// the user, a temporary directory it cannot reach), the test is skipped with one line saying why.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lchownSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';

/** The checkout (dist/test/support/ is three levels down). */
const CHECKOUT = join(__dirname, '..', '..', '..');
/** What a program of dist/ reads besides node_modules: protos/ (protocol/proto.ts) and package.json (versions). */
const COPIED = ['dist', 'protos', 'package.json'];

export const NOBODY = 65534;

/** The package directories the checkout's production dependencies resolve to, relative to the checkout. */
function productionPackages(): string[] {
  const found = new Set<string>();
  const dependenciesOf = (dir: string): string[] => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    return [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})];
  };
  // Node's lookup: node_modules/NAME in the requiring package's directory, then in each one above it.
  const resolve = (name: string, from: string): string | undefined => {
    for (let dir = from; ; dir = dirname(dir)) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) return candidate;
      if (dir === CHECKOUT || dirname(dir) === dir) return undefined;
    }
  };
  const pending: Array<[string, string]> = dependenciesOf(CHECKOUT).map((name) => [name, CHECKOUT]);
  for (let next = pending.pop(); next; next = pending.pop()) {
    const dir = resolve(...next); // an optional dependency for another platform is not installed
    if (dir === undefined || found.has(dir)) continue;
    found.add(dir);
    for (const name of dependenciesOf(dir)) pending.push([name, dir]);
  }
  // A package nested in another one's node_modules comes along with it.
  const dirs = [...found].sort();
  return dirs.filter((d) => !dirs.some((outer) => d.startsWith(outer + sep))).map((d) => relative(CHECKOUT, d));
}

/** Gives `path` and everything under it to uid:gid (symbolic links themselves, never their targets). */
function chownTree(path: string, uid: number, gid: number): void {
  lchownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) chownTree(join(path, entry.name), uid, gid);
    else lchownSync(join(path, entry.name), uid, gid);
  }
}

/** Why `uid` cannot run node on a file of `root`, or undefined if it can. */
function whyUnreachable(root: string, uid: number, gid: number): string | undefined {
  const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', join(root, 'package.json')], {
    uid,
    gid,
    cwd: '/',
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.error) return `uid ${uid} cannot run ${process.execPath}: ${r.error.message}`;
  if (r.status !== 0)
    return `uid ${uid} cannot read files in ${dirname(root)}: ${(r.stderr.split('\n').find((l) => l.includes('Error')) ?? (r.status !== null ? `exit ${r.status}` : `killed by ${r.signal ?? 'an unknown signal'}`)).trim()}`;
  return undefined;
}

/** What a program never reads: source maps, TypeScript sources and declarations, documentation. */
const NOT_RUN = /\.(map|ts|mts|cts|md)$/;

/** A copy of the built checkout that one other user can run programs from. */
export class OtherUserCopy {
  private static readonly made = new Map<number, OtherUserCopy>();

  private constructor(
    private readonly root: string | undefined,
    /** why the copy cannot serve, when it cannot */
    readonly unavailable: string | undefined,
  ) {}

  /**
   * The copy for `uid`, made at its first use (about 15 MB: a second or two) and shared by every test
   * of the run; removed when the process exits. Never throws: a failure is kept as `unavailable`.
   */
  static of(uid: number, gid: number): OtherUserCopy {
    let copy = OtherUserCopy.made.get(uid);
    if (!copy) {
      copy = OtherUserCopy.make(uid, gid);
      OtherUserCopy.made.set(uid, copy);
      if (OtherUserCopy.made.size === 1) process.once('exit', () => OtherUserCopy.made.forEach((c) => c.remove()));
    }
    return copy;
  }

  private static make(uid: number, gid: number): OtherUserCopy {
    let root: string | undefined;
    try {
      root = mkdtempSync(join(tmpdir(), `soccrt-u${uid}-`));
      for (const entry of [...COPIED, ...productionPackages()]) {
        cpSync(join(CHECKOUT, entry), join(root, entry), { recursive: true, verbatimSymlinks: true, filter: (src) => !NOT_RUN.test(src) });
      }
      chownTree(root, uid, gid);
      const why = whyUnreachable(root, uid, gid);
      if (why === undefined) return new OtherUserCopy(root, undefined);
      rmSync(root, { recursive: true, force: true });
      return new OtherUserCopy(undefined, why);
    } catch (err) {
      if (root) rmSync(root, { recursive: true, force: true });
      return new OtherUserCopy(undefined, `cannot copy the checkout for uid ${uid}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * The copy's path of `distPath` (relative to dist/, e.g. 'demo/demo.js'). If there is no copy, the
   * running test is skipped, its title saying why in one line.
   */
  program(ctx: Mocha.Context, distPath: string): string {
    if (this.root === undefined) {
      if (ctx.test) ctx.test.title += ` (skipped: ${this.unavailable ?? 'no copy'})`;
      ctx.skip();
    }
    return join(this.root, 'dist', distPath);
  }

  private remove(): void {
    if (this.root) rmSync(this.root, { recursive: true, force: true });
  }
}
