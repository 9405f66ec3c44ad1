/** `plumb status`: the status report as one table; exit code 1 when unhealthy, 2 when unreachable. */
import type { Writable } from 'node:stream';
import type { StatusReport } from '../shared/status.ts';
import { getJson, type Remote } from './remote.ts';
import { renderStatus } from './status-view.ts';

export const STATUS_PATH = '/api/v1/status';

export async function runStatus(options: { remote: Remote; json: boolean; out: Writable & { isTTY?: boolean; columns?: number } }): Promise<number> {
  let report: StatusReport;
  try {
    report = await getJson<StatusReport>(options.remote, STATUS_PATH);
  } catch (err) {
    process.stderr.write(`plumb status: ${(err as Error).message}\n`);
    return 2;
  }
  if (options.json) options.out.write(JSON.stringify(report, null, 2) + '\n');
  else options.out.write(renderStatus(report, { color: options.out.isTTY === true }).join('\n') + '\n');
  return report.healthy ? 0 : 1;
}
