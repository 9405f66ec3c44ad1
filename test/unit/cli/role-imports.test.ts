/**
 * Each command loads only its role: what `plumb agent` imports to read its config and build the
 * agent must not pull in the collector, its sinks' SDKs (Elasticsearch, S3), the OpenTelemetry
 * SDK, or the parser pool of an agent that tails no file.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/processes.ts';

/** The module URLs a fresh Node loads while importing `files` (relative to the repository). */
function loadedBy(files: string[]): string[] {
  const hook = `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ load(url, ctx, next) { seen.push(url); return next(url, ctx); } });
process.on('exit', () => process.stdout.write(JSON.stringify(seen)));`;
  const script = files.map((f) => `await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, f)).href)});`).join('\n');
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as string[]).map((u) => u.replace(pathToFileURL(REPO_ROOT).href + '/', ''));
}

describe('role imports', () => {
  it('plumb agent (its config and the agent) loads no collector code, no sink SDK, no tracing SDK, no parser pool', () => {
    const loaded = loadedBy(['cli/agent-config.ts', 'agent/agent.ts']);
    expect(loaded.some((u) => u.startsWith('agent/statsd/'))).toBe(true);
    const forbidden = loaded.filter((u) => /^collector\/|node_modules\/(@elastic|@aws-sdk|@opentelemetry\/(sdk|core|resources|exporter)|piscina|protobufjs|@grpc)/.test(u));
    expect(forbidden).toEqual([]);
  });

  it('the whole-file config (check-config, collector, all) still knows the collector', () => {
    const loaded = loadedBy(['cli/config.ts']);
    expect(loaded.some((u) => u.startsWith('collector/'))).toBe(true);
  });
});
