import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { AlertEngine } from '../../../../collector/alerts/engine.ts';
import { alertsConfig} from './harness.ts';
import { waitFor } from '../../../helpers/wait.ts';

const rule = (name: string) => `  - { alert: ${name}, metric: m, aggregate: max, window: 1m, op: ">", threshold: 1 }\n`;
const names = (engine: AlertEngine) => (engine.rulesJSON().data as { groups: { rules: { name: string }[] }[] }).groups[0].rules.map((r) => r.name);

describe('rule file watching', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('reloads when the file is rewritten or replaced, keeps the rules through a broken version, and still reloads on demand after stop()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plumb-watch-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, `rules:\n${rule('First')}`);
    const engine = new AlertEngine({ config: alertsConfig({ rulesFile: file, watchInterval: '20ms' }), telemetry: new Telemetry(), log: silentLogger() });
    await engine.start();
    cleanup.push(() => engine.stop(100));
    expect(names(engine)).toEqual(['First']);

    writeFileSync(file, `rules:\n${rule('First')}${rule('Second')}`);
    await waitFor(() => names(engine).length === 2, { what: 'the rewritten file' });

    // Editors and Kubernetes replace the file instead of writing into it.
    writeFileSync(join(dir, 'next.yaml'), `rules:\n${rule('Replaced')}`);
    renameSync(join(dir, 'next.yaml'), file);
    await waitFor(() => names(engine)[0] === 'Replaced', { what: 'the replaced file' });

    writeFileSync(file, 'rules:\n  - alert: Broken\n');
    await waitFor(() => !engine.lastReload.ok, { what: 'the broken file to be read' });
    expect(names(engine)).toEqual(['Replaced']);

    await engine.stop(100);
    writeFileSync(file, `rules:\n${rule('AfterStop')}`);
    await engine.reload(); // an explicit reload (SIGHUP) still works
    expect(names(engine)).toEqual(['AfterStop']);
  });
});
