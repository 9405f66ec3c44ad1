/**
 * The tailer under the real logrotate with copytruncate (with and without compress), for app.log and app.log*.
 * See logrotate-scenario.ts for how each scenario runs and counts.
 */
import { describe, it } from 'vitest';
import { LOGROTATE, runScenario, type Scenario } from './logrotate-scenario.ts';

const scenarios: Scenario[] = [
  { name: 'copytruncate, path app.log', directives: ['copytruncate'], glob: false },
  { name: 'copytruncate, glob app.log*', directives: ['copytruncate'], glob: true },
  { name: 'copytruncate with compress, no delaycompress', directives: ['copytruncate', 'compress'], glob: false },
  { name: 'copytruncate with compress and delaycompress, glob app.log*', directives: ['copytruncate', 'compress', 'delaycompress'], glob: true },
  { name: 'copytruncate with compress, no delaycompress, glob app.log*, tailer stopped across a rotation', directives: ['copytruncate', 'compress'], glob: true, downFrom: 700, downTo: 950 },
];

describe.skipIf(LOGROTATE === undefined)('logrotate copytruncate', () => {
  for (const s of scenarios) it(`${s.name}: every line once`, () => runScenario(s));
});
