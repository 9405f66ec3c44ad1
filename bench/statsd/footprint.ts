/**
 * Where the agent's idle RSS comes from: a fresh Node process imports one module (a dependency,
 * or plumb's own modules) and reports its RSS, so each can be compared with Node alone.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { track } from './processes.ts';

const REPO = resolve(import.meta.dirname, '..', '..');

export interface Footprint {
  label: string;
  rssBytes: number;
  heapUsedBytes: number;
}

function measureImports(specifiers: string[]): Promise<{ rss: number; heapUsed: number }> {
  const script = `${specifiers.map((s) => `await import(${JSON.stringify(s)});`).join('')}
setTimeout(() => { const u = process.memoryUsage(); process.stdout.write(JSON.stringify({ rss: u.rss, heapUsed: u.heapUsed })); }, 500);`;
  return new Promise((res, rej) => {
    const child = track(spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return rej(new Error(`importing ${specifiers.join(', ')} failed: ${err.trim().split('\n')[0]}`));
      res(JSON.parse(out) as { rss: number; heapUsed: number });
    });
  });
}

/** `codeRoot`: the folder holding plumb's compiled modules (agent/, collector/, cli/). */
export async function importFootprints(codeRoot: string): Promise<Footprint[]> {
  const own = (p: string): string => pathToFileURL(join(codeRoot, p)).href;
  const cases: [string, string[]][] = [
    ['Node alone', []],
    ['@datadog/sketches-js', ['@datadog/sketches-js']],
    ['pino', ['pino']],
    ['yaml', ['yaml']],
    ['@sinclair/typebox', ['@sinclair/typebox', '@sinclair/typebox/value']],
    ['prom-client', ['prom-client']],
    ['fastify', ['fastify']],
    ['undici', ['undici']],
    ['agent/agent.js (the agent role)', [own('agent/agent.js')]],
    ['agent/agent.js + cli/config.js (the role and the whole config schema)', [own('agent/agent.js'), own('cli/config.js')]],
  ];
  const out: Footprint[] = [];
  for (const [label, specifiers] of cases) {
    // best of two: the first start of a module may still be settling
    const a = await measureImports(specifiers);
    const b = await measureImports(specifiers);
    const m = a.rss <= b.rss ? a : b;
    out.push({ label, rssBytes: m.rss, heapUsedBytes: m.heapUsed });
  }
  return out;
}
