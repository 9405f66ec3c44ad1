/**
 * Which code the contenders run. By default plumb is compiled to JavaScript first (as users run
 * it: `npm run build`, `dist/cli/main.js`); the benchmark's own helper processes are compiled with
 * it, so no contender pays for Node's TypeScript type stripping (15-30 MB of RSS).
 * `--from-source` runs the .ts files instead.
 *
 * The output goes to a temporary folder outside the checkout (nobody's dist/ is touched, and the
 * linter never sees generated JavaScript), with a link to the checkout's node_modules.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..', '..');

export interface CodePaths {
  compiled: boolean;
  agentMain: string;
  bareSink: string;
  inprocess: string;
  etsyServer: string;
  etsyBackend: string;
  etsyCompat: string;
}

function paths(root: string, ext: '.ts' | '.js', compiled: boolean): CodePaths {
  const s = join(root, 'bench', 'statsd');
  return {
    compiled,
    agentMain: join(root, 'cli', `main${ext}`),
    bareSink: join(s, `bare-sink${ext}`),
    inprocess: join(s, `inprocess${ext}`),
    etsyServer: join(s, `etsy-udp-server${ext}`),
    etsyBackend: join(s, `etsy-backend${ext}`),
    etsyCompat: join(s, `etsy-compat${ext}`),
  };
}

export function sourcePaths(): CodePaths {
  return paths(REPO, '.ts', false);
}

/** Where the compiled code goes; `removeBuild` deletes it. */
export const BUILD_DIR = join(tmpdir(), `plumb-bench-${process.pid}`);

/** Compiles with bench/tsconfig.bench.json; type errors elsewhere in the tree don't stop the emit. */
export function buildCode(log: (line: string) => void): CodePaths {
  const out = BUILD_DIR;
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'package.json'), '{ "type": "module", "private": true }\n');
  symlinkSync(join(REPO, 'node_modules'), join(out, 'node_modules'), 'dir');
  // The agent reads its built-in grok patterns from config/ at the package root, as installed.
  symlinkSync(join(REPO, 'config'), join(out, 'config'), 'dir');
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', join(REPO, 'bench', 'tsconfig.bench.json'), '--noEmit', 'false', '--outDir', out], { cwd: REPO, stdio: 'pipe', timeout: 180_000 });
  } catch (err) {
    const text = String((err as { stdout?: Buffer }).stdout ?? '').split('\n').slice(0, 3).join(' / ');
    log(`tsc reported errors (emitted anyway): ${text}`);
  }
  // files the compiled modules read next to themselves (as `npm run build` copies them into dist/)
  for (const dir of ['shared/otlp/proto', 'shared/console/static']) {
    if (existsSync(join(REPO, dir))) cpSync(join(REPO, dir), join(out, dir), { recursive: true });
  }
  const compiled = paths(out, '.js', true);
  for (const f of Object.values(compiled)) {
    if (typeof f === 'string' && !existsSync(f)) throw new Error(`build did not produce ${f}; run with --from-source`);
  }
  return compiled;
}

export function removeBuild(): void {
  rmSync(BUILD_DIR, { recursive: true, force: true });
}

/** The checkout's commit and the files under the measured code that differ from it (others may be editing). */
export function codeVersion(): { commit: string; dirty: string[] } {
  const git = (args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', timeout: 10_000 }).trim();
    } catch {
      return '';
    }
  };
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--', 'agent', 'shared', 'cli'])
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.slice(3));
  return { commit, dirty };
}
