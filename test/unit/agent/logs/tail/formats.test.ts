import { describe, expect, it } from 'vitest';
import { decodeCri, decodeDocker, decodeJsonObject, kubernetesFromPath, PartialJoiner, type Piece } from '../../../../../agent/logs/tail/formats.ts';

describe('decodeCri', () => {
  it('takes the time, stream, partial flag and log off a line', () => {
    expect(decodeCri('2024-05-01T10:00:00.123456789Z stdout F hello world')).toEqual({
      time: '2024-05-01T10:00:00.123456789Z',
      stream: 'stdout',
      partial: false,
      log: 'hello world',
    });
    expect(decodeCri('2024-05-01T10:00:00+02:00 stderr P  two spaces')).toMatchObject({ stream: 'stderr', partial: true, log: ' two spaces' });
    expect(decodeCri('2024-05-01T10:00:00Z stdout F')).toMatchObject({ log: '' });
    expect(decodeCri('2024-05-01T10:00:00Z stdout F:x more')).toMatchObject({ partial: false, log: 'more' });
  });

  it('refuses lines that are not CRI', () => {
    for (const bad of ['hello', '2024-05-01T10:00:00Z stdin F x', '2024-05-01T10:00:00Z stdout X x', '2024-05-01T10:00:00Z stdout FF x', 'yesterday stdout F x', '']) {
      expect(decodeCri(bad), bad).toBeUndefined();
    }
  });
});

describe('decodeDocker', () => {
  it('reads json-file lines; a log without a trailing newline is a piece', () => {
    expect(decodeDocker('{"log":"hi\\n","stream":"stdout","time":"2024-05-01T10:00:00.1Z"}')).toEqual({ time: '2024-05-01T10:00:00.1Z', stream: 'stdout', partial: false, log: 'hi' });
    expect(decodeDocker('{"log":"half","stream":"stderr","time":"t"}')).toMatchObject({ partial: true, log: 'half', stream: 'stderr' });
    expect(decodeDocker('{"log":"crlf\\r\\n","stream":"stdout","time":"t"}')).toMatchObject({ log: 'crlf' });
  });

  it('refuses lines that are not docker json-file', () => {
    for (const bad of ['{"log":1,"stream":"stdout"}', '{"log":"x","stream":"other"}', 'plain text', '{"log":"x"', 'null', '[]']) {
      expect(decodeDocker(bad), bad).toBeUndefined();
    }
  });
});

describe('decodeJsonObject', () => {
  it('accepts objects only', () => {
    expect(decodeJsonObject('{"a":1}')).toEqual({ a: 1 });
    for (const bad of ['[1]', '1', '"s"', '{"a":', '', 'null']) expect(decodeJsonObject(bad), bad).toBeUndefined();
  });
});

describe('kubernetesFromPath', () => {
  it('reads /var/log/containers and /var/log/pods names', () => {
    const id = 'f'.repeat(64);
    expect(kubernetesFromPath(`/var/log/containers/api-5d8c7-x2x9z_prod_api-server-${id}.log`)).toEqual({ pod: 'api-5d8c7-x2x9z', namespace: 'prod', container: 'api-server', containerId: id });
    expect(kubernetesFromPath('/var/log/pods/prod_api-5d8c7-x2x9z_3f2a-11ee-9c1b/api-server/0.log')).toEqual({ pod: 'api-5d8c7-x2x9z', namespace: 'prod', container: 'api-server', containerId: undefined, podUid: '3f2a-11ee-9c1b' });
    expect(kubernetesFromPath('/var/log/nginx/access.log')).toBeUndefined();
  });
});

describe('PartialJoiner', () => {
  const piece = (log: string, partial: boolean, stream: 'stdout' | 'stderr' = 'stdout') => ({ time: `t-${log}`, stream, partial, log });

  it('joins pieces per stream until the last one, spanning their bytes', () => {
    const j = new PartialJoiner(1000);
    expect(j.push(piece('a', true), 0, 10, false, 0)).toBeUndefined();
    expect(j.push(piece('x', false, 'stderr'), 10, 20, false, 0)).toMatchObject({ text: 'x', offset: 10, end: 20, stream: 'stderr' });
    expect(j.pendingStart()).toBe(0);
    expect(j.push(piece('b', true), 20, 30, false, 0)).toBeUndefined();
    expect(j.push(piece('c', false), 30, 40, false, 0)).toEqual({ text: 'abc', offset: 0, end: 40, truncated: false, stream: 'stdout', time: 't-a', malformed: false });
    expect(j.pendingStart()).toBe(-1);
  });

  it('caps a joined line at maxBytes and flags it', () => {
    const j = new PartialJoiner(5);
    j.push(piece('abcd', true), 0, 1, false, 0);
    j.push(piece('efgh', true), 1, 2, false, 0);
    expect(j.push(piece('ijkl', false), 2, 3, false, 0)).toMatchObject({ text: 'abcde', truncated: true });
  });

  it('emits a line whose last piece never came after the timeout', () => {
    const j = new PartialJoiner(100);
    j.push(piece('lonely', true), 0, 5, false, 1000);
    const out: Piece[] = [];
    j.flushExpired(1500, 1000, (p) => out.push(p));
    expect(out).toEqual([]);
    j.flushExpired(2000, 1000, (p) => out.push(p));
    expect(out.map((p) => p.text)).toEqual(['lonely']);
  });
});
