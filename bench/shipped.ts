/**
 * The Node flags each role runs with as shipped: the systemd units and the Kubernetes manifests
 * (agent 2 MiB semi-spaces, collector 8), `npm start` and the image (`plumb all`, 8). Benchmarks
 * start plumb with these, so their figures are those of the path a user runs.
 */
export const SHIPPED_NODE_FLAGS: Readonly<Record<'agent' | 'collector' | 'all', readonly string[]>> = {
  agent: ['--max-semi-space-size=2'],
  collector: ['--max-semi-space-size=8'],
  all: ['--max-semi-space-size=8'],
};
