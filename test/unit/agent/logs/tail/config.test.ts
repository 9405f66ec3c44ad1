import { describe, expect, it } from 'vitest';
import { loadConfig, ConfigError, Section } from '../../../../../shared/config.ts';
import { LogInputsSchema, TailerOptionsSchema, tailConfigErrors } from '../../../../../agent/logs/tail/config.ts';
import { Tailer } from '../../../../../agent/logs/tail/tailer.ts';
import { Telemetry } from '../../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../../shared/log.ts';

const Schema = Section({ agent: Section({ logs: LogInputsSchema, tail: TailerOptionsSchema }) });

describe('tailer configuration', () => {
  it('reads the documented inputs with their defaults', () => {
    const cfg = loadConfig(Schema, {
      text: `
agent:
  logs:
    - path: "/var/log/nginx/access.log*"
      pattern: "%{COMBINEDAPACHELOG}"
      timestamp: { field: timestamp, format: "dd/MMM/yyyy:HH:mm:ss Z" }
      fields: { service: web }
    - path: "/var/log/app/*.log"
      multiline: { start: "^\\\\d{4}-\\\\d{2}-\\\\d{2}" }
    - path: "/var/log/containers/*.log"
      format: cri
  tail:
    maxOpenFiles: 100
`,
    });
    const [nginx, app, k8s] = cfg.agent.logs;
    expect(nginx).toMatchObject({ format: 'plain', startAt: 'beginning', exclude: [], fields: { service: 'web' }, pattern: '%{COMBINEDAPACHELOG}' });
    expect(nginx.timestamp).toEqual({ field: 'timestamp', format: 'dd/MMM/yyyy:HH:mm:ss Z' });
    expect(app.multiline).toEqual({ start: '^\\d{4}-\\d{2}-\\d{2}', maxBytes: 256 * 1024, maxLines: 500, timeout: 2000 });
    expect(k8s.format).toBe('cri');
    expect(cfg.agent.tail).toMatchObject({ maxOpenFiles: 100, discoverInterval: 1000, maxLineBytes: 65536, batchMaxRecords: 1000, batchMaxBytes: 1024 * 1024, fingerprintBytes: 1024 });
    expect(tailConfigErrors(cfg.agent.logs, cfg.agent.tail)).toEqual([]);
  });

  it('names every bad key', () => {
    expect(() => loadConfig(Schema, { text: 'agent:\n  logs:\n    - path: /a\n      format: syslog\n      startat: end\n' })).toThrow(ConfigError);
    try {
      loadConfig(Schema, { text: 'agent:\n  logs:\n    - path: /a\n      format: syslog\n      startat: end\n' });
    } catch (err) {
      const lines = (err as ConfigError).errors.join('\n');
      expect(lines).toContain('agent.logs[0].format');
      expect(lines).toContain('agent.logs[0].startat: unknown key (did you mean "startAt"?)');
    }
  });

  it('checks what the schema cannot: absolute paths, regular expressions, limits', () => {
    const cfg = loadConfig(Schema, {
      text: 'agent:\n  logs:\n    - path: logs/*.log\n      multiline: { start: "(" }\n    - path: /x\n      format: json\n      multiline: { start: "^a" }\n  tail:\n    maxOpenFiles: 20000\n',
    });
    const errors = tailConfigErrors(cfg.agent.logs, cfg.agent.tail);
    expect(errors).toEqual([
      expect.stringMatching(/^agent\.logs\[0\]\.path: "logs\/\*\.log" is not absolute/),
      expect.stringMatching(/^agent\.logs\[0\]\.multiline\.start: not a valid regular expression/),
      'agent.logs[1].multiline: cannot be combined with format "json" (one object per line)',
      'agent.tail.maxOpenFiles: larger than maxFiles (10000); raise maxFiles',
    ]);
    expect(() => new Tailer({ inputs: cfg.agent.logs, options: cfg.agent.tail, dataDir: '/tmp/unused' }, { telemetry: new Telemetry(), log: silentLogger(), next: async () => undefined })).toThrow(ConfigError);
  });

  it('refuses unknown tailer options', () => {
    expect(() => loadConfig(Schema, { text: 'agent:\n  tail:\n    maxOpenFile: 3\n' })).toThrow(/agent\.tail\.maxOpenFile: unknown key \(did you mean "maxOpenFiles"\?\)/);
  });
});
