/**
 * The span sinks as ingest sees them: the Zipkin exporter, the Elasticsearch span index and the
 * OTLP span export of the moment, which a config reload may replace. While the old sinks drain
 * and the new ones open (the span index and the OTLP export on the same disk queues), writers
 * wait here and then write to the new sinks; nothing is refused for the swap. Writes already
 * under way finish on the old sinks before those are stopped.
 */
import type { Context } from '@opentelemetry/api';
import type { ZipkinSpan } from '../../shared/zipkin.ts';
import type { DurableSpanSink, SpanSink } from '../ingest/traces.ts';
import type { ZipkinExporter } from './zipkin-exporter.ts';
import { durableSpanSinks, type SpanIndex } from './span-index.ts';

export interface SpanSinkSet {
  zipkin: ZipkinExporter | null;
  /** The Elasticsearch span index. */
  index: SpanIndex | null;
  /** The OTLP span export. */
  export: SpanIndex | null;
}

export const NO_SPAN_SINKS: SpanSinkSet = { zipkin: null, index: null, export: null };

export class SwappableSpanSinks {
  private current: SpanSinkSet = NO_SPAN_SINKS;
  /** The span index and the OTLP export as one durable sink, written first. */
  private durableNow: DurableSpanSink | null = null;
  private swapping: Promise<void> | null = null;
  /** Durable writes under way on the current sinks. */
  private inFlight = 0;
  private idle: (() => void) | null = null;

  /** What ingest hands spans to for Zipkin: the exporter of the moment (no exporter: taken, sent nowhere). */
  readonly zipkin: SpanSink = { write: (spans, parent) => this.writeZipkin(spans, parent) };
  /** What ingest writes first: the span index and the OTLP export of the moment. */
  readonly durable: DurableSpanSink = { write: (spans, parent) => this.writeDurable(spans, parent) };

  get sinks(): SpanSinkSet {
    return this.current;
  }

  set sinks(sinks: SpanSinkSet) {
    this.current = sinks;
    this.durableNow = durableSpanSinks([sinks.index, sinks.export]);
  }

  private writeZipkin(spans: readonly ZipkinSpan[], parent: Context | undefined): boolean | Promise<boolean> {
    if (this.swapping !== null) return this.swapping.then(() => this.writeZipkin(spans, parent));
    const z = this.current.zipkin;
    return z === null ? true : z.write(spans, parent);
  }

  private async writeDurable(spans: readonly ZipkinSpan[], parent: Context | undefined): Promise<boolean> {
    while (this.swapping !== null) await this.swapping;
    const d = this.durableNow;
    if (d === null) return true;
    this.inFlight++;
    try {
      return await d.write(spans, parent);
    } finally {
      if (--this.inFlight === 0 && this.idle !== null) {
        this.idle();
        this.idle = null;
      }
    }
  }

  /**
   * Runs `swap` (stop the old sinks, open the new ones) once the writes under way are done, with
   * new writes held until it is done. `swap` returns the sinks to use from then on.
   */
  async replace(swap: (old: SpanSinkSet) => Promise<SpanSinkSet>): Promise<void> {
    while (this.swapping !== null) await this.swapping;
    const run = (async () => {
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
      this.sinks = await swap(this.current);
    })();
    this.swapping = run.then(
      () => undefined,
      () => undefined,
    );
    void this.swapping.finally(() => {
      this.swapping = null;
    });
    await run;
  }
}
