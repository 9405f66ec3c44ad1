import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/config.ts';
import { loadPlumbConfig } from '../../../cli/config.ts';
import { heapGrowthPercent, smallHeap } from '../../../agent/config.ts';

const load = (text: string, env: Record<string, string> = {}) => loadPlumbConfig({ text, file: 'test.yaml', env });

function errorsOf(text: string, env: Record<string, string> = {}): string[] {
  try {
    load(text, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.errors;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

describe('configuration', () => {
  it('accepts the documented example and decodes units', () => {
    const c = load(`
agent:
  statsd: { listen: "127.0.0.1:8125", flushInterval: 10s, maxSeries: 100000 }
  forward: { collectors: ["http://127.0.0.1:9102"] }
collector:
  listen: "127.0.0.1:9102"
  metrics:
    quantiles: [0.5, 0.9, 0.95, 0.99, 0.999]
    window: 60s
    seriesTtl: 10m
    mappings:
      - match: "api.*.requests"
        name: api_requests
        labels: { endpoint: "$1" }
`);
    expect(c.agent.statsd.flushInterval).toBe(10_000);
    expect(c.collector.metrics.seriesTtl).toBe(600_000);
    expect(c.agent.statsd.receiveBuffer).toBe(4 * 1024 * 1024);
    expect(c.collector.metrics.mappings[0]).toMatchObject({ match: 'api.*.requests', name: 'api_requests', matchType: 'glob' });
  });

  it('fills every default from an empty file', () => {
    const c = load('');
    expect(c.agent.statsd.listen).toBe('127.0.0.1:8125');
    expect(c.collector.listen).toBe('127.0.0.1:9102');
    expect(c.agent.forward.collectors).toEqual(['http://127.0.0.1:9102']);
  });

  it("the agent's heap policy is auto unless set, and takes auto, true or false", () => {
    expect(load('').agent.memory.optimizeForSize).toBe('auto');
    expect(load('agent: { memory: { optimizeForSize: false } }').agent.memory.optimizeForSize).toBe(false);
    expect(load('agent: { memory: { optimizeForSize: true } }').agent.memory.optimizeForSize).toBe(true);
    // auto: the small heap for an agent that parses no logs and runs no collector beside it
    expect(smallHeap('auto', false, false)).toBe(true);
    expect(smallHeap('auto', true, false)).toBe(false);
    expect(smallHeap('auto', false, true)).toBe(false);
    expect(smallHeap(true, true, true)).toBe(true);
    expect(smallHeap(false, false, false)).toBe(false);
    expect(errorsOf('agent: { memory: { optimizeForSize: "small" } }').join('\n')).toMatch(/agent\.memory\.optimizeForSize.*auto, true or false/);
  });

  it("the agent's heap growth is auto unless set: 50 % for a process that parses logs and runs the collector, V8's own otherwise", () => {
    expect(load('').agent.memory.heapGrowthPercent).toBe('auto');
    expect(load('agent: { memory: { heapGrowthPercent: 80 } }').agent.memory.heapGrowthPercent).toBe(80);
    expect(heapGrowthPercent('auto', true, true)).toBe(50);
    expect(heapGrowthPercent('auto', true, false)).toBeUndefined();
    expect(heapGrowthPercent('auto', false, true)).toBeUndefined();
    expect(heapGrowthPercent(120, false, false)).toBe(120);
    expect(errorsOf('agent: { memory: { heapGrowthPercent: 5 } }').join('\n')).toMatch(/agent\.memory\.heapGrowthPercent.*auto or a whole percentage from 10 to 300/);
  });

  it('reports every error at once, each with its key path', () => {
    const errors = errorsOf(`
agent:
  statsd: { flushInterva: 10s, maxSeries: -1, listen: "nope" }
  forward: { collectors: [] }
collector:
  bogus: 1
  metrics: { window: "ten seconds", quantiles: [2] }
`);
    expect(errors).toEqual(
      expect.arrayContaining([
        'agent.statsd.flushInterva: unknown key (did you mean "flushInterval"?)',
        expect.stringMatching(/^collector\.bogus: unknown key/),
        expect.stringMatching(/^agent\.statsd\.listen: expected host:port/),
        expect.stringMatching(/^agent\.statsd\.maxSeries: /),
        expect.stringMatching(/^agent\.forward\.collectors: /),
        expect.stringMatching(/^collector\.metrics\.window: expected a duration/),
        expect.stringMatching(/^collector\.metrics\.quantiles\[0\]: /),
      ]),
    );
  });

  it("a type error inside a section does not hide that section's semantic errors", () => {
    const errors = errorsOf(`
agent:
  logs:
    - { path: /var/log/a.log, pattern: "%{NOSUCHPATTERN:x}" }
    - { path: /var/log/b.log, pattern: "%{IP:client}", timestamp: { field: ts, format: "not a format QQQQ" }, multiline: { start: "^x", maxLines: many } }
  grok: { workers: lots }
collector:
  metrics:
    window: "ten seconds"
    mappings:
      - { match: "a.*", name: "x-y" }
`);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^agent\.grok\.workers: /),
        expect.stringMatching(/^agent\.logs\[1\]\.multiline\.maxLines: /),
        expect.stringMatching(/^agent\.logs\[0\]\.pattern: .*NOSUCHPATTERN/),
        expect.stringMatching(/^collector\.metrics\.window: expected a duration/),
        expect.stringMatching(/^collector\.metrics\.mappings\[0\]\.name: "x-y" cannot become a Prometheus metric name/),
      ]),
    );
  });

  it('says a list was written where a mapping belongs, and that a required key is missing', () => {
    const errors = errorsOf(`
collector:
  logs:
    sinks:
      - { type: file, path: /tmp/x }
  traces: { zipkin: { urll: "http://zipkin:9411" } }
`);
    expect(errors).toEqual([
      'collector.logs.sinks: expected a mapping of keys, not a list',
      'collector.traces.zipkin.urll: unknown key (did you mean "url"?)',
      expect.stringMatching(/^collector\.traces\.zipkin\.url: missing: expected an http\(s\) URL/),
    ]);
  });

  it('names a mapping whose regex does not compile', () => {
    expect(errorsOf('collector: { metrics: { mappings: [{ match: "(", matchType: regex }] } }')).toEqual([
      expect.stringMatching(/^collector\.metrics\.mappings\[0\]\.match: not a valid regular expression/),
    ]);
  });

  it('applies PLUMB_ environment overrides with types, and refuses unknown ones', () => {
    const c = load('agent: { statsd: { maxSeries: 5 } }', {
      PLUMB_AGENT__STATSD__MAX_SERIES: '50000',
      PLUMB_COLLECTOR__LISTEN: '127.0.0.2:9999',
      PLUMB_AGENT__FORWARD__COLLECTORS: '["http://a:1", "http://b:2"]',
      PLUMB_AGENT__STATSD__FLUSH_INTERVAL: '2s',
    });
    expect(c.agent.statsd.maxSeries).toBe(50_000);
    expect(c.collector.listen).toBe('127.0.0.2:9999');
    expect(c.agent.forward.collectors).toEqual(['http://a:1', 'http://b:2']);
    expect(c.agent.statsd.flushInterval).toBe(2000);
    expect(errorsOf('', { PLUMB_AGENT__STATSD__NOPE: '1' })).toEqual([expect.stringMatching(/^PLUMB_AGENT__STATSD__NOPE: environment override names no configuration key/)]);
    expect(errorsOf('', { PLUMB_AGENT__STATSD__MAX_SERIES: 'lots' })).toEqual([expect.stringMatching(/^agent\.statsd\.maxSeries: expected integer/)]);
  });

  it('refuses broken YAML with the parser message', () => {
    expect(errorsOf('agent: [unclosed')[0]).toMatch(/^YAML: /);
    expect(errorsOf('agent: 1\nagent: 2')[0]).toMatch(/^YAML: .*[Mm]ap keys must be unique/);
  });
});
