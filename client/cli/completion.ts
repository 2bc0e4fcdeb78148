// `soccrctl completion bash|zsh`: a shell completion script generated from the program's own commander
// definitions (its commands, options, arguments and their descriptions), so it names exactly what this
// soccrctl accepts. Load it with `source <(soccrctl completion bash)` or put it where the shell looks.
import { Argument, Command } from 'commander';

const SHELLS = ['bash', 'zsh'] as const;
type Shell = (typeof SHELLS)[number];

/** What an option's value or an argument completes to: file names, a fixed list, or nothing. */
type ValueKind = { files: true } | { choices: readonly string[] } | null;

interface OptionSpec {
  /** every spelling: --long and -s */
  names: string[];
  description: string;
  /** null: a flag, it takes no value */
  value: ValueKind | 'free' | null;
  repeatable: boolean;
}

interface CommandSpec {
  name: string;
  description: string;
  options: OptionSpec[];
  args: Array<ValueKind | 'free'>;
}

/** A value placeholder that names a file: `<file>`, `<path>`. */
function kindOf(placeholder: string | undefined, choices: readonly string[] | undefined): ValueKind | 'free' {
  if (choices && choices.length > 0) return { choices };
  if (placeholder !== undefined && /^(file|path|dir)$/.test(placeholder)) return { files: true };
  return 'free';
}

function optionSpecs(cmd: Command): OptionSpec[] {
  const specs: OptionSpec[] = cmd.options
    .filter((o) => !o.hidden)
    .map((o) => {
      const placeholder = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1];
      const takesValue = o.required || o.optional;
      return {
        names: [o.long, o.short].filter((n): n is string => n !== undefined),
        description: o.description,
        value: takesValue ? kindOf(placeholder, o.argChoices) : null,
        // an option whose parser takes the previous value collects its repeats (--fd 3 --fd 4)
        repeatable: o.variadic || o.parseArg?.length === 2,
      };
    });
  specs.push({ names: ['--help', '-h'], description: 'display help for command', value: null, repeatable: false });
  return specs;
}

function argSpecs(cmd: Command): Array<ValueKind | 'free'> {
  return cmd.registeredArguments.map((a: Argument) => kindOf(a.name(), a.argChoices));
}

/** The program as completion sees it: its global options and each command (and `help <command>`). */
function describeProgram(program: Command): { globals: OptionSpec[]; commands: CommandSpec[] } {
  const commands: CommandSpec[] = program.commands.map((c) => ({
    name: c.name(),
    description: c.description(),
    options: optionSpecs(c),
    args: argSpecs(c),
  }));
  const names = commands.map((c) => c.name);
  commands.push({ name: 'help', description: 'display help for command', options: [], args: [{ choices: names }] });
  return { globals: optionSpecs(program), commands };
}

export function completionScript(program: Command, shell: Shell): string {
  const p = describeProgram(program);
  return shell === 'bash' ? bashScript(program.name(), p.globals, p.commands) : zshScript(program.name(), p.globals, p.commands);
}

export function addCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(soccrctl completion bash)')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(SHELLS))
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
    });
}

// ---- bash ---------------------------------------------------------------------------------------

/** A word list for `compgen -W`, single-quoted for bash. */
function bashWords(words: string[]): string {
  return `'${words.join(' ').replace(/'/g, `'\\''`)}'`;
}

function bashValueCompletion(kind: ValueKind | 'free'): string {
  if (kind === 'free' || kind === null) return 'COMPREPLY=()';
  if ('files' in kind) return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))';
  return `COMPREPLY=($(compgen -W ${bashWords([...kind.choices])} -- "$cur"))`;
}

function bashScript(prog: string, globals: OptionSpec[], commands: CommandSpec[]): string {
  const fn = `_${prog.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const all = [...globals, ...commands.flatMap((c) => c.options)];
  const valued = [...new Set(all.filter((o) => o.value !== null).flatMap((o) => o.names))];
  // an option's value: by the option (the same name means the same kind of value in every command)
  const valueCases = new Map<string, string[]>();
  for (const o of all) {
    if (o.value === null) continue;
    const body = bashValueCompletion(o.value);
    for (const n of o.names) {
      const names = valueCases.get(body) ?? [];
      if (!names.includes(n)) names.push(n);
      valueCases.set(body, names);
    }
  }
  const globalWords = globals.flatMap((o) => o.names.filter((n) => n.startsWith('--')));
  const commandCases = commands.map((c) => {
    const opts = [...new Set([...c.options.flatMap((o) => o.names.filter((n) => n.startsWith('--'))), ...globalWords])];
    const argCases = c.args.map((a, i) => `        ${i}) ${bashValueCompletion(a)} ;;`).join('\n');
    return [
      `    ${c.name})`,
      '      if [[ "$cur" == -* ]]; then',
      `        COMPREPLY=($(compgen -W ${bashWords(opts)} -- "$cur"))`,
      '        return',
      '      fi',
      '      case "$nargs" in',
      ...(argCases ? [argCases] : []),
      '        *) COMPREPLY=() ;;',
      '      esac',
      '      ;;',
    ].join('\n');
  });
  return `# bash completion for ${prog}, generated by \`${prog} completion bash\` from its own definitions.
# Load it in ~/.bashrc with: source <(${prog} completion bash)
${fn}() {
  local cur prev cmd w i nargs
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev=""
  if ((COMP_CWORD > 0)); then prev="\${COMP_WORDS[COMP_CWORD-1]}"; fi
  # the value of an option that takes one
  case "$prev" in
${[...valueCases].map(([body, names]) => `    ${names.join('|')}) ${body}; return ;;`).join('\n')}
  esac
  # the command: the first word that is neither an option nor an option's value; then its arguments
  cmd=""
  nargs=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      ${valued.join('|')}) ((i++)) ;;
      -*) ;;
      *) if [[ -z "$cmd" ]]; then cmd="$w"; else ((nargs++)); fi ;;
    esac
  done
  case "$cmd" in
    "")
      if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W ${bashWords(globalWords)} -- "$cur"))
      else
        COMPREPLY=($(compgen -W ${bashWords(commands.map((c) => c.name))} -- "$cur"))
      fi
      ;;
${commandCases.join('\n')}
    *) COMPREPLY=() ;;
  esac
}
complete -F ${fn} ${prog}
`;
}

// ---- zsh ----------------------------------------------------------------------------------------

/** Text inside an _arguments spec's [description]: brackets and colons escaped, one line. */
function zshDescription(s: string): string {
  return s
    .replace(/\s+/g, ' ')
    .replace(/([\\[\]:])/g, '\\$1')
    .trim();
}

/** A word single-quoted for zsh. */
function zshQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function zshAction(kind: ValueKind | 'free'): string {
  if (kind === 'free' || kind === null) return ' ';
  if ('files' in kind) return '_files';
  return `(${kind.choices.join(' ')})`;
}

function zshOptionSpecs(options: OptionSpec[]): string[] {
  return options.map((o) => {
    const spec = zshQuote(`[${zshDescription(o.description)}]${o.value === null ? '' : `:value:${zshAction(o.value)}`}`);
    // -h and --help exclude each other; a repeatable option may come again
    const prefix = o.repeatable ? '*' : o.names.length > 1 ? `(${o.names.join(' ')})` : '';
    const names = o.names.length > 1 ? `{${o.names.join(',')}}` : o.names[0];
    return `${prefix ? zshQuote(prefix) : ''}${names}${spec}`;
  });
}

function zshScript(prog: string, globals: OptionSpec[], commands: CommandSpec[]): string {
  const fn = `_${prog.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const globalSpecs = zshOptionSpecs(globals);
  const commandCases = commands.map((c) => {
    const args = c.args.map((a, i) => zshQuote(`${i + 1}:argument:${zshAction(a)}`));
    return `        ${c.name}) _arguments -s $globals ${[...zshOptionSpecs(c.options), ...args].join(' ')} ;;`;
  });
  return `#compdef ${prog}
# zsh completion for ${prog}, generated by \`${prog} completion zsh\` from its own definitions.
# Load it in ~/.zshrc (after compinit) with: source <(${prog} completion zsh)
${fn}() {
  local curcontext="$curcontext" state line ret=1
  local -a globals commands
  globals=(
${globalSpecs.map((s) => `    ${s}`).join('\n')}
  )
  commands=(
${commands.map((c) => `    ${zshQuote(`${c.name}:${c.description.replace(/\s+/g, ' ').replace(/:/g, '\\:')}`)}`).join('\n')}
  )
  _arguments -C -s $globals '1:command:->command' '*::argument:->argument' && ret=0
  case $state in
    command) _describe -t commands '${prog} command' commands && ret=0 ;;
    argument)
      curcontext="\${curcontext%:*:*}:${prog}-$words[1]:"
      case $words[1] in
${commandCases.join('\n')}
      esac
      ;;
  esac
  return ret
}
if [[ "$funcstack[1]" == "${fn}" ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${prog}
fi
`;
}
