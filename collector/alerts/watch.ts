/**
 * Notices when the rule file changes. It polls the file's status rather than using inotify
 * events: editors replace files by rename and Kubernetes swaps ConfigMap symlinks, and a stat
 * of the path follows both. A change of size, mtime or inode triggers `onChange`.
 */
import { unwatchFile, watchFile, type Stats } from 'node:fs';

export class FileWatcher {
  private readonly path: string;
  private readonly intervalMs: number;
  private readonly onChange: () => void;
  private listener: ((curr: Stats, prev: Stats) => void) | undefined;

  constructor(path: string, intervalMs: number, onChange: () => void) {
    this.path = path;
    this.intervalMs = intervalMs;
    this.onChange = onChange;
  }

  get watching(): boolean {
    return this.listener !== undefined;
  }

  start(): void {
    if (this.listener !== undefined) return;
    this.listener = (curr, prev) => {
      if (curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size || curr.ino !== prev.ino) this.onChange();
    };
    watchFile(this.path, { interval: this.intervalMs, persistent: false }, this.listener);
  }

  stop(): void {
    if (this.listener === undefined) return;
    unwatchFile(this.path, this.listener);
    this.listener = undefined;
  }
}
