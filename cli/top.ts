/**
 * `plumb top`: the status table redrawn every interval, like top(1). Keys (no Enter needed on a
 * terminal): n i o u d h g sort by name, in/s, out/s, queue fill, drops, health, graph order;
 * r reverses; q or Ctrl-C quits. Plain ANSI (clear, home, the alternate screen on a terminal):
 * no curses library.
 */
import type { Readable, Writable } from 'node:stream';
import type { StatusReport } from '../shared/status.ts';
import { getJson, type Remote } from './remote.ts';
import { STATUS_PATH } from './status.ts';
import { renderStatus, SORT_KEYS, type SortKey } from './status-view.ts';

type Out = Writable & { isTTY?: boolean; columns?: number; rows?: number };
type In = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

export interface TopOptions {
  remote: Remote;
  intervalMs: number;
  input: In;
  out: Out;
}

const SORT_NAMES: Record<SortKey, string> = { graph: 'graph order', id: 'name', in: 'in/s', out: 'out/s', queue: 'queue fill', drops: 'drops', health: 'health' };

export async function runTop(o: TopOptions): Promise<number> {
  const tty = o.out.isTTY === true;
  let sort: SortKey = 'graph';
  let reverse = false;
  let report: StatusReport | null = null;
  let error = '';
  let quit: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (quit = resolve));

  const draw = (): void => {
    const width = o.out.columns ?? 120;
    const lines = report !== null ? renderStatus(report, { sort, reverse, color: tty, width }) : [];
    const footer = `${new Date().toISOString().slice(11, 19)}  sorted by ${SORT_NAMES[sort]}${reverse ? ' (reversed)' : ''}, every ${o.intervalMs / 1000}s  keys: n i o u d h g sort, r reverse, q quit`;
    const body = [...(error !== '' ? [`! ${error}`, ''] : []), ...lines, '', footer.slice(0, width)];
    const rows = o.out.rows;
    const shown = rows !== undefined && rows > 0 ? body.slice(0, rows - 1) : body;
    o.out.write(`\x1b[H\x1b[2J${shown.join('\n')}\n`);
  };

  const onKey = (chunk: Buffer | string): void => {
    for (const ch of chunk.toString()) {
      if (ch === 'q' || ch === 'Q' || ch === '\x03') return quit();
      if (ch === 'r') reverse = !reverse;
      else if (SORT_KEYS[ch] !== undefined) {
        sort = SORT_KEYS[ch];
        reverse = false;
      } else continue;
      draw();
    }
  };

  const refresh = async (): Promise<void> => {
    try {
      report = await getJson<StatusReport>(o.remote, STATUS_PATH, Math.max(1000, o.intervalMs));
      error = '';
    } catch (err) {
      error = (err as Error).message;
    }
    draw();
  };

  if (o.input.isTTY === true) o.input.setRawMode?.(true);
  o.input.on('data', onKey);
  o.input.resume();
  const onSignal = (): void => quit();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (tty) o.out.write('\x1b[?1049h\x1b[?25l');
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const loop = async (): Promise<void> => {
    await refresh();
    if (!stopped) timer = setTimeout(() => void loop(), o.intervalMs);
  };
  void loop();
  await done;
  stopped = true;
  if (timer !== null) clearTimeout(timer);
  o.input.off('data', onKey);
  if (o.input.isTTY === true) o.input.setRawMode?.(false);
  o.input.pause();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (tty) o.out.write('\x1b[?25h\x1b[?1049l');
  return 0;
}
