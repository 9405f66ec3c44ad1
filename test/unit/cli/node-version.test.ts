/**
 * The Node.js floor: the check itself, and the real thing on an old Node when the machine has
 * one (the system Node of the CI image is 20): one line, exit 1, nothing loaded after it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { MIN_NODE_VERSION, nodeVersionError } from '../../../cli/node-version.ts';
import { REPO_ROOT } from '../../helpers/processes.ts';

describe('Node.js version check', () => {
  it.each([
    ['20.19.2', false],
    ['v20.20.2', false],
    ['22.12.0', false],
    ['22.18.9', false],
    ['22.19.0', true],
    ['22.20.1', true],
    ['24.0.0', true],
    ['25.1.0', true],
  ])('%s is %s', (version, ok) => {
    const error = nodeVersionError(version);
    if (ok) expect(error).toBeNull();
    else expect(error).toBe(`plumb: PLUMB_ERR_NODE_VERSION: Node.js 22.19.0 or newer is needed, this is v${version.replace(/^v/, '')}; install a current LTS (22 or 24) and run plumb with it`);
  });

  it('asks for what package.json engines says', () => {
    const engines = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toBe(`>=${MIN_NODE_VERSION.replace(/\.0$/, '')}`);
  });

  it('is the first module the CLI loads', () => {
    const main = readFileSync(join(REPO_ROOT, 'cli', 'main.ts'), 'utf8');
    const firstImport = /^import .*$/m.exec(main)?.[0];
    expect(firstImport).toBe("import './node-version.ts';");
  });

  const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find((bin) => {
    try {
      const v = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
      return nodeVersionError(v) !== null;
    } catch {
      return false;
    }
  });
  it.skipIf(oldNode === undefined)('on a real old Node.js, prints one line and exits 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plumb-node-version-'));
    try {
      const source = readFileSync(join(REPO_ROOT, 'cli', 'node-version.ts'), 'utf8');
      const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023 } }).outputText;
      const entry = join(dir, 'main.mjs');
      writeFileSync(join(dir, 'node-version.mjs'), js);
      // what follows the check in the real CLI must never run
      writeFileSync(entry, "import './node-version.mjs';\nprocess.stdout.write('loaded past the check\\n');\n");
      const r = spawnSync(oldNode!, [entry], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^plumb: PLUMB_ERR_NODE_VERSION: Node\.js 22\.19\.0 or newer is needed, this is v\d+\./);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
