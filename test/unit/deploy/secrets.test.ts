/**
 * No deploy path starts with a token anyone else knows: no placeholder token anywhere under
 * deploy/ or in the READMEs, kustomize takes the token from a file the operator writes (and
 * fails without it, rather than overwriting a Secret made by hand), the Helm chart refuses to
 * render without a token or an existing Secret, and the documented commands make the token
 * before anything that needs it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { renderChart } from '../../helpers/render-chart.ts';
import { REPO_ROOT } from '../../helpers/processes.ts';

const DEPLOY = join(REPO_ROOT, 'deploy');
const MANIFESTS = join(DEPLOY, 'kubernetes');
const CHART = join(DEPLOY, 'helm', 'plumb');
const PLACEHOLDERS = /replace-with-a-long-random-string|change-?me|changeit|your-token-here/i;

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const kubectl = (() => {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('deploy: no known token', () => {
  it('no file under deploy/ and no README carries a placeholder token', () => {
    const hits = [...filesUnder(DEPLOY), join(REPO_ROOT, 'README.md')]
      .filter((f) => PLACEHOLDERS.test(readFileSync(f, 'latin1')))
      .map((f) => relative(REPO_ROOT, f));
    expect(hits).toEqual([]);
  });

  it('kustomize makes the Secret from a file the operator writes, which git ignores and the repository does not hold', () => {
    const k = YAML.parse(readFileSync(join(MANIFESTS, 'kustomization.yaml'), 'utf8')) as { resources: string[]; secretGenerator: { name: string; files: string[] }[] };
    for (const file of k.resources) {
      for (const doc of YAML.parseAllDocuments(readFileSync(join(MANIFESTS, file), 'utf8'))) {
        expect((doc.toJS() as { kind?: string } | null)?.kind, `${file} holds no Secret (kubectl apply would overwrite one made by hand)`).not.toBe('Secret');
      }
    }
    expect(k.secretGenerator).toEqual([expect.objectContaining({ name: 'plumb-token', files: ['token'] })]);
    expect(readFileSync(join(MANIFESTS, '.gitignore'), 'utf8')).toMatch(/^\/token$/m);
    const tracked = execFileSync('git', ['ls-files', 'deploy/kubernetes'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n');
    expect(tracked).not.toContain('deploy/kubernetes/token');
  });

  it.skipIf(!kubectl)('kubectl kustomize: stops without the token file, and puts the file\'s token in the Secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plumb-kustomize-'));
    try {
      cpSync(MANIFESTS, dir, { recursive: true, filter: (src) => !src.endsWith('/token') });
      const without = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
      expect(without.status).not.toBe(0);
      expect(without.stderr).toMatch(/token/);
      writeFileSync(join(dir, 'token'), 'a1b2c3-operator-token');
      const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
      const secret = YAML.parseAllDocuments(out)
        .map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace: string }; data: { token: string } })
        .find((o) => o.kind === 'Secret')!;
      expect(secret.metadata).toMatchObject({ name: 'plumb-token', namespace: 'plumb' });
      expect(Buffer.from(secret.data.token, 'base64').toString()).toBe('a1b2c3-operator-token');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Helm chart does not render without a token or an existing Secret', () => {
    expect(() => renderChart(CHART, { releaseName: 'plumb', namespace: 'plumb' })).toThrow(/token\.value is required.*openssl rand.*token\.existingSecret/);
    const own = renderChart(CHART, { releaseName: 'plumb', namespace: 'plumb', values: { token: { value: 'given-at-install' } } }).documents.map((d) => d.object as { kind: string; data?: { token: string } });
    expect(Buffer.from(own.find((o) => o.kind === 'Secret')!.data!.token, 'base64').toString()).toBe('given-at-install');
    const existing = renderChart(CHART, { releaseName: 'plumb', namespace: 'plumb', values: { token: { existingSecret: 'mine' } } }).documents.map((d) => d.object as { kind: string });
    expect(existing.some((o) => o.kind === 'Secret')).toBe(false);
  });

  it('the compose stack makes a token of its own on first start and commits none', () => {
    const compose = readFileSync(join(DEPLOY, 'compose', 'docker-compose.yml'), 'utf8');
    expect(compose).toMatch(/randomBytes\(32\)/);
    const tracked = execFileSync('git', ['ls-files', 'deploy'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n');
    expect(tracked.filter((f) => /(^|\/)token$/.test(f))).toEqual([]);
  });

  it('the documented Kubernetes commands make the token before anything uses it, in a namespace that exists', () => {
    const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Kubernetes'), readme.indexOf('\n## ', readme.indexOf('## Kubernetes') + 1));
    const block = /```sh\n([\s\S]*?)```/.exec(section)![1];
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const tokenAt = lines.findIndex((l) => l.includes('deploy/kubernetes/token'));
    const applyAt = lines.findIndex((l) => l.startsWith('kubectl apply -k'));
    expect(tokenAt).toBeGreaterThanOrEqual(0);
    expect(tokenAt).toBeLessThan(applyAt);
    // a `kubectl -n plumb create secret` would run before the namespace exists
    expect(block).not.toMatch(/kubectl -n \S+ create secret/);
    const helm = /```sh\n(helm install[\s\S]*?)```/.exec(readme)![1];
    expect(helm).toMatch(/--set token\.value="\$\(openssl rand -hex 32\)"/);
  });
});
