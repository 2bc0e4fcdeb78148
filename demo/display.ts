// The demo's terminal display: numbered steps, the commands it runs, migrate phases as they start and
// complete, and a live ticker of the peer's stream, one line redrawn in place (cli-progress) above
// which everything else scrolls. When stdout is not a terminal: plain lines, no colour, and the ticker
// as one line per second listing the bytes the peer received in each 100 ms interval.
import { styleText } from 'node:util';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { formatBytes, formatMs, phaseLine } from '../client/format';
import type { PhaseEvent } from '../client/migrate';

/** What the peer received in one interval of about 100 ms. */
export interface StreamSample {
  /** ms since the watch started */
  atMs: number;
  /** bytes received in the interval, scaled to exactly 100 ms */
  per100ms: number;
  /** bytes received since the connections opened */
  totalReceived: number;
  /** the longest stall any of the peer's connections saw so far, in ms (an ongoing one included) */
  longestGapMs: number;
}

type Style = Parameters<typeof styleText>[0];

const SPARKS = '▁▂▃▄▅▆▇█';
const PLAIN_SAMPLES_PER_LINE = 10;

export class Display {
  readonly tty: boolean;
  private readonly color: boolean;
  private bars: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private label = '';
  private recent: StreamSample[] = [];
  private pending: StreamSample[] = [];
  private peak = 1;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    // A piped stdout has no isTTY at all (undefined, not the false @types/node promises).
    this.tty = out.isTTY ?? false;
    this.color = this.tty && !process.env.NO_COLOR;
  }

  paint(style: Style, text: string): string {
    return this.color ? styleText(style, text) : text;
  }

  /** Prints a line (above the ticker while it runs). */
  line(text = ''): void {
    if (this.bars) this.bars.log(`${text}\n`);
    else this.out.write(`${text}\n`);
  }

  title(text: string): void {
    this.line(this.paint('bold', text));
  }

  step(n: number, total: number, title: string): void {
    this.line();
    this.line(this.paint(['bold', 'cyan'], `[${n}/${total}] ${title}`));
  }

  info(text: string): void {
    this.line(`      ${text}`);
  }

  /** A command, as the user would type it. */
  command(text: string): void {
    this.line(`    ${this.paint('dim', '$')} ${this.paint('yellow', text)}`);
  }

  ok(text: string): void {
    this.line(`    ${this.paint('green', '✓')} ${text}`);
  }

  bad(text: string): void {
    this.line(`    ${this.paint('red', '✗')} ${text}`);
  }

  /** A migrate phase as it starts, completes or fails (migrate()'s onPhase). */
  phase(e: PhaseEvent): void {
    if (e.status === 'started') {
      this.line(`    ${this.paint('dim', '▸')} ${e.name} …`);
      return;
    }
    const [first, ...more] = (phaseLine(e) ?? e.name).split('\n');
    if (e.status === 'completed') this.ok(first);
    else this.bad(first);
    for (const l of more) this.info(l);
  }

  /** Starts the ticker line; `label` names the stream ("peer C"). */
  startTicker(label: string): void {
    this.label = label;
    this.recent = [];
    this.pending = [];
    if (!this.tty) return;
    this.bars = new cliProgress.MultiBar({
      format: () => this.tickerText(),
      fps: 20,
      hideCursor: true,
      linewrap: false,
      clearOnComplete: false,
      gracefulExit: false,
      stream: this.out,
    });
    this.bar = this.bars.create(1, 0);
  }

  sample(s: StreamSample): void {
    this.peak = Math.max(this.peak, s.per100ms);
    this.recent.push(s);
    if (this.recent.length > 200) this.recent.shift();
    if (this.bar) {
      this.bar.update(0);
      return;
    }
    this.pending.push(s);
    if (this.pending.length >= PLAIN_SAMPLES_PER_LINE) this.flushPlain();
  }

  /** Stops the ticker, leaving its last state on screen. */
  stopTicker(): void {
    if (this.bars) {
      this.bars.update(); // flushes the lines logged since the last redraw
      this.bars.stop();
      this.bars = undefined;
      this.bar = undefined;
    } else this.flushPlain();
  }

  private flushPlain(): void {
    if (this.pending.length === 0) return;
    const first = this.pending[0];
    const last = this.pending[this.pending.length - 1];
    const kib = this.pending.map((s) => String(Math.round(s.per100ms / 1024))).join(' ');
    this.out.write(
      `      ${this.label} t=${(first.atMs / 1000).toFixed(1)}s KiB per 100 ms: ${kib} | received ${formatBytes(last.totalReceived)}, longest gap ${formatMs(last.longestGapMs)}\n`,
    );
    this.pending = [];
  }

  private tickerText(): string {
    const last = this.recent[this.recent.length - 1];
    if (!last) return `      ${this.label} waiting for the first interval…`;
    const width = Math.max(10, Math.min(50, (this.out.columns ?? 100) - 86));
    const shown = this.recent.slice(-width);
    // an interval without a byte stands out: a red dot, not the lowest bar
    const spark = shown
      .map((s) =>
        s.per100ms === 0
          ? this.paint('red', '·')
          : this.paint('green', SPARKS[Math.min(SPARKS.length - 1, Math.floor((s.per100ms / this.peak) * SPARKS.length))]),
      )
      .join('');
    const rate = `${formatBytes(last.per100ms).padStart(10)}/100 ms`;
    const gap = `longest gap ${formatMs(last.longestGapMs)}`;
    return `      ${this.label} ${spark}${' '.repeat(width - shown.length)} ${rate} │ received ${formatBytes(last.totalReceived).padStart(9)} │ ${this.paint('bold', gap)}`;
  }

  /** The closing table: one row per finding, the verdict first. */
  summary(rows: Array<[string, string]>, pass: boolean): void {
    const table = new Table({ style: { head: [], border: [] }, wordWrap: true, colWidths: [22, Math.max(40, Math.min(90, (this.out.columns ?? 100) - 26))] });
    table.push(['result', pass ? this.paint(['bold', 'green'], 'PASS') : this.paint(['bold', 'red'], 'FAIL')]);
    for (const r of rows) table.push(r);
    this.line();
    this.line(table.toString());
  }
}
