// `soccrd install-service` / `soccrd uninstall-service`: renders the systemd units of systemd/ for this
// checkout (ExecStart: this node binary and this dist/daemon/main.js) into /etc/systemd/system, or
// into --unit-dir / under --prefix (tests never touch /etc), and reloads systemd when it is running
// (sd_booted: /run/systemd/system exists) and the units went to the system directory.
import { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { Stats, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export const SYSTEM_UNIT_DIR = '/etc/systemd/system';
export const UNITS = { service: 'soccrd.service', socket: 'soccrd.socket' } as const;
/** First line of every unit this command writes: uninstall removes only files that carry it. */
const MARKER = '# Installed by soccrd install-service';
const TEMPLATE_DIR = path.resolve(__dirname, '..', '..', '..', 'systemd');
const MAIN = path.join(__dirname, '..', 'main.js');
/** The checkout: what ExecStart's main.js is part of. */
const CHECKOUT = path.resolve(__dirname, '..', '..', '..');
/** What the daemon runs or reads code from in the checkout: compiled code, the native library, dependencies, protos. */
const RUN_FROM = ['dist', 'build', 'node_modules', 'protos', 'package.json'];
/** Problems named in a refusal: the first few say enough. */
const MAX_PROBLEMS = 5;
const S_ISVTX = 0o1000;
/** Directories ProtectHome=yes hides from the service. */
const HOME_DIRS = ['/home/', '/root/', '/run/user/'];

export interface InstallOptions {
  unitDir: string;
  /** also install soccrd.socket */
  socket: boolean;
  /** the node binary ExecStart runs */
  node: string;
  /** extra soccrd flags appended to ExecStart */
  daemonArgs: string[];
}

/** One ExecStart word: %-specifiers and $-expansion escaped, quoted when it holds anything unusual. */
export function execWord(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The text of a unit for this checkout, and any warnings about it. */
export function renderUnit(unit: string, opts: Pick<InstallOptions, 'node' | 'daemonArgs'>): { text: string; warnings: string[] } {
  const warnings: string[] = [];
  let text = readFileSync(path.join(TEMPLATE_DIR, unit), 'utf8')
    .replace(/@NODE@/g, () => execWord(opts.node))
    .replace(/@MAIN@/g, () => execWord(MAIN))
    .replace(/@ARGS@/g, () => opts.daemonArgs.map((a) => ` ${execWord(a)}`).join(''));
  const inHome = [opts.node, MAIN].filter((p) => HOME_DIRS.some((d) => p.startsWith(d)));
  if (inHome.length && /^ProtectHome=yes$/m.test(text)) {
    text = text.replace(/^ProtectHome=yes$/m, `# ${inHome.join(' and ')} under a home directory: read-only, not hidden.\nProtectHome=read-only`);
    warnings.push(
      `${inHome.join(' and ')} is under a home directory: the unit has ProtectHome=read-only instead of yes (install soccrd elsewhere, e.g. /opt/soccrd, for yes)`,
    );
  }
  return { text: `${MARKER} from ${path.resolve(TEMPLATE_DIR, '..')}\n${text}`, warnings };
}

/**
 * What makes the code ExecStart runs changeable by someone other than root: the node binary, the checkout
 * and everything the daemon loads from it, and every directory above them, must be owned by root and not
 * writable by group or others (a sticky directory above them, such as /tmp, is fine: others cannot
 * rename what is not theirs). Symbolic links are followed to what they name, which is checked the same
 * way. Returns the first problems found, none if root alone can change it.
 */
export function changeableByOthers(node: string, checkout = CHECKOUT): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const judge = (p: string, st: Stats, above: boolean): void => {
    if (st.uid !== 0) problems.push(`${p} is owned by uid ${st.uid}`);
    else if (st.mode & 0o022 && !(above && st.mode & S_ISVTX))
      problems.push(`${p} is writable by ${st.mode & 0o020 ? 'its group' : 'others'} (mode ${(st.mode & 0o7777).toString(8)})`);
  };
  const ancestors = (p: string): void => {
    for (let d = path.dirname(p); !seen.has(d); d = path.dirname(d)) {
      seen.add(d);
      judge(d, lstatSync(d), true);
      if (d === path.dirname(d)) return;
    }
  };
  const walk = (p: string): void => {
    if (seen.has(p) || problems.length >= MAX_PROBLEMS) return;
    seen.add(p);
    let st: Stats;
    try {
      st = lstatSync(p);
    } catch {
      return; // build/ is optional: without the native library the daemon makes its calls one by one
    }
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync(p);
      } catch {
        return; // a dangling link loads nothing
      }
      ancestors(target);
      walk(target);
      return;
    }
    judge(p, st, false);
    if (st.isDirectory()) for (const name of readdirSync(p)) walk(path.join(p, name));
  };
  const nodeReal = realpathSync(node);
  ancestors(nodeReal);
  walk(nodeReal);
  ancestors(checkout);
  const root = lstatSync(checkout);
  seen.add(checkout);
  judge(checkout, root, false);
  for (const entry of RUN_FROM) walk(path.join(checkout, entry));
  return problems.slice(0, MAX_PROBLEMS);
}

/** Whether systemd is the init system (sd_booted(3)). */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

function systemctl(args: string[]): string {
  const r = spawnSync('systemctl', args, { encoding: 'utf8', timeout: 60_000 });
  return r.status === 0 ? '' : `systemctl ${args.join(' ')} failed: ${(r.error?.message ?? r.stderr).trim()}`;
}

/** Writes the units (atomically: a temporary file renamed); returns the lines to print. */
export function installUnits(opts: InstallOptions): string[] {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} does not exist: build first (npm run build)`);
  if (!path.isAbsolute(opts.node) || !existsSync(opts.node)) throw new Error(`node binary ${opts.node}: give an absolute path that exists`);
  // The service runs as root whatever it loads: whoever could change that code could run code as root.
  const problems = changeableByOthers(opts.node);
  if (problems.length) {
    throw new Error(
      `refusing to point ExecStart at code that others than root can change (they could run code as root): ${problems.join('; ')}. ` +
        `Install from a root-owned copy: cp -a ${CHECKOUT} /opt/soccrd && chown -R root:root /opt/soccrd && chmod -R go-w /opt/soccrd, ` +
        `then run that copy's install-service (node /opt/soccrd/dist/daemon/main.js install-service)`,
    );
  }
  mkdirSync(opts.unitDir, { recursive: true, mode: 0o755 });
  const out: string[] = [];
  for (const unit of opts.socket ? [UNITS.service, UNITS.socket] : [UNITS.service]) {
    const { text, warnings } = renderUnit(unit, opts);
    const file = path.join(opts.unitDir, unit);
    writeFileSync(`${file}.tmp`, text, { mode: 0o644 });
    renameSync(`${file}.tmp`, file);
    out.push(`installed ${file}`, ...warnings.map((w) => `warning: ${w}`));
  }
  out.push(...reload(opts.unitDir));
  const start = opts.socket ? UNITS.socket : UNITS.service;
  out.push(`start it with: systemctl enable --now ${start}`);
  return out;
}

/** Removes the units this command installed (and stops them first, where systemd runs). */
export function uninstallUnits(unitDir: string): string[] {
  const out: string[] = [];
  const system = path.resolve(unitDir) === SYSTEM_UNIT_DIR;
  if (system && systemdRunning()) {
    const err = systemctl(['disable', '--now', UNITS.socket, UNITS.service]);
    if (err) out.push(`warning: ${err}`);
  }
  for (const unit of [UNITS.service, UNITS.socket]) {
    const file = path.join(unitDir, unit);
    if (!existsSync(file)) continue;
    if (!readFileSync(file, 'utf8').startsWith(MARKER)) {
      out.push(`left ${file}: not installed by soccrd install-service`);
      continue;
    }
    rmSync(file);
    out.push(`removed ${file}`);
  }
  out.push(...reload(unitDir));
  return out;
}

function reload(unitDir: string): string[] {
  if (!systemdRunning()) return [`not reloading systemd: it is not the init system here (no /run/systemd/system; PID 1 is ${initName()})`];
  if (path.resolve(unitDir) !== SYSTEM_UNIT_DIR) return [`not reloading systemd: ${unitDir} is not ${SYSTEM_UNIT_DIR}`];
  const err = systemctl(['daemon-reload']);
  return [err ? `warning: ${err}` : 'systemctl daemon-reload: done'];
}

function initName(): string {
  try {
    return readFileSync('/proc/1/comm', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function unitDirOf(o: { unitDir?: string; prefix?: string }): string {
  if (o.unitDir) return path.resolve(o.unitDir);
  return o.prefix ? path.join(path.resolve(o.prefix), SYSTEM_UNIT_DIR) : SYSTEM_UNIT_DIR;
}

/**
 * Runs `soccrd install-service ...` or `soccrd uninstall-service ...` if that is what argv asks for
 * (then exits the process); false otherwise.
 */
export async function runServiceCommand(argv: string[]): Promise<boolean> {
  const command = argv[2];
  if (command !== 'install-service' && command !== 'uninstall-service') return false;
  const program = new Command().name('soccrd').exitOverride();
  const dirOptions = (c: Command): Command =>
    c
      .option('--unit-dir <dir>', `where the unit files go (default ${SYSTEM_UNIT_DIR})`)
      .option('--prefix <dir>', `a root to put ${SYSTEM_UNIT_DIR} under (for packaging and tests)`);
  let lines: string[] = [];
  dirOptions(program.command('install-service'))
    .description('install the systemd units for this checkout (soccrd.service; soccrd.socket with --socket)')
    .option('--socket', 'also install soccrd.socket (socket activation on /run/soccrd/soccrd.sock)')
    .option('--node <path>', 'the node binary ExecStart runs', process.execPath)
    .argument('[daemon-flags...]', 'extra soccrd flags for ExecStart, after --')
    .action((daemonArgs: string[], o: { unitDir?: string; prefix?: string; socket?: boolean; node: string }) => {
      lines = installUnits({ unitDir: unitDirOf(o), socket: o.socket === true, node: o.node, daemonArgs });
    });
  dirOptions(program.command('uninstall-service'))
    .description('stop, disable and remove the units install-service wrote')
    .action((o: { unitDir?: string; prefix?: string }) => {
      lines = uninstallUnits(unitDirOf(o));
    });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'commander.helpDisplayed') process.exit(0);
    if (!e.code?.startsWith('commander.')) process.stderr.write(`soccrd ${command}: ${e.message ?? String(err)}\n`);
    process.exit(e.code?.startsWith('commander.') ? 2 : 1);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exit(0);
}
