/**
 * Posts metric batches straight to a collector's ingest (POST /v1/metrics), as an agent would,
 * with ids of its own so each batch is applied once. A batch the collector did not take (it was
 * down) can be kept and posted again, as an agent's spool would.
 */
import type { MetricBatch, WireMetric } from '../../shared/wire.ts';

export function counter(name: string, value: number, tags: string[] = []): WireMetric {
  return { type: 'c', name, tags, value };
}

export function gauge(name: string, value: number, tags: string[] = []): WireMetric {
  return { type: 'g', name, tags, value };
}

export class MetricPoster {
  readonly agent: string;
  private seq = 0;
  /** Batches the collector did not acknowledge, oldest first. */
  readonly unsent: MetricBatch[] = [];

  constructor(agent: string) {
    this.agent = agent;
  }

  batch(metrics: WireMetric[]): MetricBatch {
    const seq = ++this.seq;
    const now = Date.now();
    return { id: `${this.agent}:${seq}`, agent: this.agent, seq, start: now - 1000, end: now, metrics, events: [], serviceChecks: [] };
  }

  /** Posts one batch; true when the collector took it (applied or a duplicate). */
  async post(url: string, batch: MetricBatch, token?: string): Promise<boolean> {
    try {
      const res = await fetch(`${url}/v1/metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(batch),
        signal: AbortSignal.timeout(5000),
      });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** Posts what was kept, then `metrics` as a new batch; whatever fails is kept for next time. Returns whether all went. */
  async send(url: string, metrics: WireMetric[], token?: string): Promise<boolean> {
    this.unsent.push(this.batch(metrics));
    while (this.unsent.length > 0) {
      if (!(await this.post(url, this.unsent[0], token))) return false;
      this.unsent.shift();
    }
    return true;
  }
}
