/** Every process the benchmark starts is tracked here, so none outlives it (on success, error or signal). */
import type { ChildProcess } from 'node:child_process';

const children = new Set<ChildProcess>();

export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** SIGKILLs every tracked process still running. Synchronous, so it also works in an 'exit' handler. */
export function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  children.clear();
}
