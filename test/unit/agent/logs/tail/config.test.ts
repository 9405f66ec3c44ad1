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
    expect(app.multiline).toEqual({ mode: 'start', start: '^\\d{4}-\\d{2}-\\d{2}', maxBytes: 256 * 1024, maxLines: 500, timeout: 2000 });
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

  it('checks multiline modes: start needs start, the others need a condition', () => {
    const cfg = loadConfig(Schema, {
      text:
        'agent:\n  logs:\n    - path: /a\n      multiline: { mode: halt-with }\n    - path: /b\n      multiline: { condition: "x" }\n' +
        '    - path: /c\n      multiline: { mode: continue-through, condition: "[" }\n    - path: /d\n      multiline: { mode: halt-before, condition: "^\\\\d" }\n',
    });
    expect(tailConfigErrors(cfg.agent.logs, cfg.agent.tail)).toEqual([
      'agent.logs[0].multiline.condition: required with mode "halt-with" (a regular expression deciding which lines join an event)',
      'agent.logs[1].multiline.start: required with mode "start" (a regular expression matching an event\'s first line)',
      'agent.logs[1].multiline.condition: not used with mode "start"; choose a mode such as "halt-before" or drop it',
      expect.stringMatching(/^agent\.logs\[2\]\.multiline\.condition: not a valid regular expression/),
    ]);
    expect(() => loadConfig(Schema, { text: 'agent:\n  logs:\n    - path: /a\n      multiline: { mode: halt_with, condition: x }\n' })).toThrow(/agent\.logs\[0\]\.multiline\.mode/);
  });

  it('reads the start, age and encoding keys with their defaults', () => {
    const cfg = loadConfig(Schema, { text: 'agent:\n  logs:\n    - path: /a\n    - path: /b\n      newFilesStartAt: end\n      ignoreOlder: 2h\n      encoding: utf-16\n  tail:\n    unterminatedTimeout: 3s\n' });
    expect(cfg.agent.logs[0]).toMatchObject({ startAt: 'beginning', newFilesStartAt: 'beginning', ignoreOlder: 0, encoding: 'utf-8' });
    expect(cfg.agent.logs[1]).toMatchObject({ newFilesStartAt: 'end', ignoreOlder: 7_200_000, encoding: 'utf-16' });
    expect(cfg.agent.tail.unterminatedTimeout).toBe(3000);
    expect(() => loadConfig(Schema, { text: 'agent:\n  logs:\n    - path: /a\n      encoding: utf-32\n' })).toThrow(/agent\.logs\[0\]\.encoding/);
  });

  it('refuses unknown tailer options', () => {
    expect(() => loadConfig(Schema, { text: 'agent:\n  tail:\n    maxOpenFile: 3\n' })).toThrow(/agent\.tail\.maxOpenFile: unknown key \(did you mean "maxOpenFiles"\?\)/);
  });
});
