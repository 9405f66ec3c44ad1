/**
 * Notices when the rule file changes. It polls the file's status rather than using inotify
 * events: editors replace files by rename and Kubernetes swaps ConfigMap symlinks, and a stat
 * of the path follows both. A change of size, mtime or inode triggers `onChange`. The baseline
 * is taken synchronously in start(), so a change right after start() is not missed.
 */
import { statSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';

type Signature = string;

function signature(s: Stats | undefined): Signature {
  return s === undefined ? 'missing' : `${s.ino}:${s.size}:${s.mtimeMs}`;
}

export class FileWatcher {
  private readonly path: string;
  private readonly intervalMs: number;
  private readonly onChange: () => void;
  private timer: NodeJS.Timeout | undefined;
  private last: Signature = 'missing';
  private polling = false;

  constructor(path: string, intervalMs: number, onChange: () => void) {
    this.path = path;
    this.intervalMs = intervalMs;
    this.onChange = onChange;
  }

  get watching(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer !== undefined) return;
    try {
      this.last = signature(statSync(this.path));
    } catch {
      this.last = 'missing';
    }
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      let now: Signature;
      try {
        now = signature(await stat(this.path));
      } catch {
        now = 'missing';
      }
      if (now !== this.last && this.timer !== undefined) {
        this.last = now;
        this.onChange();
      }
    } finally {
      this.polling = false;
    }
  }
}
