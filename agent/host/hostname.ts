/** The name in every host:<name> tag. */
import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';

/**
 * The configured name wins; then the kernel's (`<hostProc>/sys/kernel/hostname`); then Node's.
 * The kernel file shows the UTS namespace of the reader, so a container sees the host's name
 * only when it shares the host's UTS namespace (hostNetwork in Kubernetes); otherwise set
 * `hostname` (for example from the node name through the downward API).
 */
export async function resolveHostname(configured: string | undefined, hostProc: string): Promise<string> {
  if (configured !== undefined && configured !== '') return configured;
  try {
    const name = (await readFile(join(hostProc, 'sys/kernel/hostname'), 'utf8')).trim();
    if (name !== '') return name;
  } catch {
    // Not Linux, or /proc not mounted where configured: the OS answer is the next best.
  }
  return osHostname();
}
