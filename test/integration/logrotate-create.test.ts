/**
 * The tailer under the real logrotate with create (the application reopens on SIGHUP), with and without compress and delaycompress, and a restart across a compressed rotation.
 * See logrotate-scenario.ts for how each scenario runs and counts.
 */
import { describe, it } from 'vitest';
import { LOGROTATE, runScenario, type Scenario } from './logrotate-scenario.ts';

const scenarios: Scenario[] = [
  { name: 'create, the application reopens on SIGHUP', directives: ['create 0644'], glob: false },
  // The fresh file of each rotation appears at the path a followed file had: read from its beginning.
  { name: 'create, newFilesStartAt end', directives: ['create 0644'], glob: false, input: { newFilesStartAt: 'end' } },
  // Two rotations between two discovery passes (a busy machine): the generation in between was
  // never seen at the path, and is read from its .gz.
  { name: 'create with compress, two rotations per discovery pass', directives: ['create 0644', 'compress'], glob: false, burst: 2, discoverInterval: '1s' },
  { name: 'create with compress and delaycompress', directives: ['create 0644', 'compress', 'delaycompress'], glob: false },
  { name: 'create with compress and delaycompress, two rotations per discovery pass', directives: ['create 0644', 'compress', 'delaycompress'], glob: false, burst: 2, discoverInterval: '1s' },
  { name: 'create with compress, no delaycompress', directives: ['create 0644', 'compress'], glob: false },
  { name: 'create with compress, no delaycompress, tailer stopped across a rotation', directives: ['create 0644', 'compress'], glob: false, downFrom: 700, downTo: 950 },
];

describe.skipIf(LOGROTATE === undefined)('logrotate create', () => {
  for (const s of scenarios) it(`${s.name}: every line once`, () => runScenario(s));
});
