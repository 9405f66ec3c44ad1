/**
 * The first module the CLI loads: on a Node.js older than plumb needs, it says so in one line and
 * exits 1 before any dependency is loaded (otherwise Node 20 stops with a raw TypeError from
 * undici). The floor is the highest `engines` of plumb's runtime dependencies: undici needs
 * 22.19, the OpenTelemetry packages 22.15; package.json's `engines` says the same.
 * Plain syntax only: this must run on an old Node to be of any use.
 */
export const MIN_NODE_VERSION = '22.19.0';

/** The message for a Node.js older than MIN_NODE_VERSION, or null when it is new enough. */
export function nodeVersionError(version: string): string | null {
  const have = version.replace(/^v/, '').split('.').map((p) => parseInt(p, 10) || 0);
  const need = MIN_NODE_VERSION.split('.').map((p) => parseInt(p, 10));
  for (let i = 0; i < 3; i++) {
    if ((have[i] ?? 0) > need[i]) return null;
    if ((have[i] ?? 0) < need[i]) {
      return `plumb: PLUMB_ERR_NODE_VERSION: Node.js ${MIN_NODE_VERSION} or newer is needed, this is ${version.startsWith('v') ? version : `v${version}`}; install a current LTS (22 or 24) and run plumb with it`;
    }
  }
  return null;
}

const error = nodeVersionError(process.versions.node);
if (error !== null) {
  process.stderr.write(`${error}\n`);
  process.exit(1);
}
