/**
 * Memory in deploy/kubernetes and the Helm chart: each role's limit is above its highest measured
 * peak (bench/RESULTS.md), and the V8 heap is capped (NODE_OPTIONS --max-old-space-size) low
 * enough that the heap, plus what lives outside it, stays under the limit: the process is slowed
 * by its own garbage collector (and the collector answers 429) instead of being OOM-killed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/processes.ts';
import { renderChart } from '../../helpers/render-chart.ts';

/** Highest RSS measured per role, MiB (bench/RESULTS.md: the agent during a collector outage with spans held in memory; the collector during an agent outage and drain). */
const MEASURED_PEAK_MIB = { agent: 787, collector: 394 };
/** Outside the old space: young generation (up to 128 MiB measured), code, parser threads, I/O buffers; for the collector also the request bodies it may hold (collector.limits.maxBodyBytesInFlight, 256 MiB). */
const OUTSIDE_HEAP_MIB = { agent: 256, collector: 256 + 256 };

interface Container {
  env?: { name: string; value?: string }[];
  resources: { requests: { memory: string }; limits: { memory: string } };
}
type Workload = { kind: string; spec: { template: { spec: { containers: Container[] } } } };

function mib(q: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  if (!m) throw new Error(`unexpected quantity ${q}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

function check(workloads: Workload[]): void {
  for (const [kind, role] of [['DaemonSet', 'agent'], ['StatefulSet', 'collector']] as const) {
    const c = workloads.find((w) => w.kind === kind)!.spec.template.spec.containers[0];
    const limit = mib(c.resources.limits.memory);
    const request = mib(c.resources.requests.memory);
    const options = c.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
    const heap = Number(/--max-old-space-size=(\d+)/.exec(options)?.[1]);
    expect(limit, `${role} limit above its measured peak`).toBeGreaterThan(MEASURED_PEAK_MIB[role]);
    expect(heap, `${role} heap capped`).toBeGreaterThan(0);
    expect(heap + OUTSIDE_HEAP_MIB[role], `${role}: heap cap + what lives outside the heap ≤ limit`).toBeLessThanOrEqual(limit);
    expect(request, `${role} request covers its typical load`).toBeGreaterThanOrEqual(Math.min(512, limit));
  }
}

describe('memory requests and limits', () => {
  it('deploy/kubernetes', () => {
    const files = ['agent-daemonset.yaml', 'collector-statefulset.yaml'];
    const docs = files.flatMap((f) => YAML.parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy', 'kubernetes', f), 'utf8')).map((d) => d.toJS() as Workload));
    check(docs.filter((d) => d && (d.kind === 'DaemonSet' || d.kind === 'StatefulSet')));
  });

  it('the Helm chart, with its defaults and with the heap raised', () => {
    const chart = join(REPO_ROOT, 'deploy', 'helm', 'plumb');
    const objects = (values: Record<string, unknown>) => renderChart(chart, { releaseName: 'plumb', namespace: 'plumb', values: { token: { value: 't' }, ...values } }).documents.map((d) => d.object as unknown as Workload);
    check(objects({}));
    const raised = objects({ agent: { maxHeapMiB: 1024 } }).find((w) => w.kind === 'DaemonSet')!;
    expect(raised.spec.template.spec.containers[0].env).toContainEqual({ name: 'NODE_OPTIONS', value: '--max-old-space-size=1024 --max-semi-space-size=2' });
    const collector = objects({ collector: { maxHeapMiB: 1024 } }).find((w) => w.kind === 'StatefulSet')!;
    expect(collector.spec.template.spec.containers[0].env).toContainEqual({ name: 'NODE_OPTIONS', value: '--max-old-space-size=1024 --max-semi-space-size=8' });
  });
});
