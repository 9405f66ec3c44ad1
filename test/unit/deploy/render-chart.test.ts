/**
 * The chart renderer behaves as Helm does on the features the chart uses, and refuses the ones
 * it does not know instead of rendering something else.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeValues, renderChart } from '../../helpers/render-chart.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A throw-away chart with `templates` (file → text) and `values` (values.yaml text). */
function chart(templates: Record<string, string>, values = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'plumb-chart-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'templates'));
  writeFileSync(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: "4.5"\n');
  writeFileSync(join(dir, 'values.yaml'), values);
  for (const [f, text] of Object.entries(templates)) writeFileSync(join(dir, 'templates', f), text);
  return dir;
}

function render(template: string, values = '', overrides: Record<string, unknown> = {}): string {
  // .txt: rendered like a manifest, but not parsed as YAML
  const dir = chart({ 't.txt': template }, values);
  return renderChart(dir, { releaseName: 'rel', namespace: 'ns', values: overrides }).files.get('templates/t.txt')!;
}

describe('renderChart', () => {
  it('trims whitespace at {{- and -}} and drops comments', () => {
    expect(render('a:\n  {{- /* note */ -}}\n  b')).toBe('a:b');
    expect(render('x  {{- "y" }}  z')).toBe('xy  z');
    expect(render('x  {{ "y" -}}  z')).toBe('x  yz');
  });

  it('reads .Values, .Release and .Chart; a missing key prints nothing, a field of nothing fails', () => {
    expect(render('{{ .Values.a.b }} {{ .Release.Name }}/{{ .Release.Namespace }} {{ .Chart.Name }}-{{ .Chart.Version }} {{ .Chart.AppVersion }}', 'a: { b: 7 }')).toBe('7 rel/ns demo-1.2.3 4.5');
    expect(render('[{{ .Values.nothing }}]')).toBe('[]');
    expect(() => render('{{ .Values.nothing.deeper }}')).toThrow(/nil pointer evaluating \.\.Values\.nothing\.deeper|nil pointer/);
  });

  it('takes values merged over values.yaml, as -f/--set do', () => {
    expect(render('{{ .Values.a.x }} {{ .Values.a.y }} {{ .Values.b }}', 'a: { x: 1, y: 2 }\nb: keep', { a: { y: 3 } })).toBe('1 3 keep');
    expect(mergeValues({ a: 1, b: 2 }, { b: null })).toEqual({ a: 1 });
  });

  it('does if / else if / else with Go truth', () => {
    const t = '{{ if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end }}';
    expect(render(t, 'a: true')).toBe('A');
    expect(render(t, 'a: 0\nb: [1]')).toBe('B');
    expect(render(t, 'a: ""\nb: {}')).toBe('C');
    expect(render('{{ if and .Values.a (not .Values.b) }}yes{{ end }}', 'a: 1\nb: false')).toBe('yes');
  });

  it('ranges over lists and maps (keys sorted), with variables and $', () => {
    expect(render('{{ range .Values.l }}[{{ . }}]{{ end }}', 'l: [a, b]')).toBe('[a][b]');
    expect(render('{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}', 'm: { z: 1, a: 2 }')).toBe('a=2;z=1;');
    expect(render('{{ range $x := list "p" "q" }}{{ $x }}{{ $.Release.Name }} {{ end }}')).toBe('prel qrel ');
    expect(render('{{ range .Values.none }}x{{ else }}empty{{ end }}')).toBe('empty');
  });

  it('with sets the dot only when the value is not empty', () => {
    expect(render('{{ with .Values.a }}{{ .b }}{{ end }}|{{ with .Values.c }}no{{ end }}', 'a: { b: hi }\nc: []')).toBe('hi|');
  });

  it('defines and includes templates from _helpers.tpl, and pipes them', () => {
    const dir = chart({
      '_helpers.tpl': '{{- define "demo.labels" -}}\napp: {{ .Chart.Name }}\nrel: {{ .Release.Name }}\n{{- end -}}',
      'cm.yaml': 'metadata:\n  labels:\n    {{- include "demo.labels" . | nindent 4 }}\n',
    });
    const out = renderChart(dir, { releaseName: 'rel', namespace: 'ns' });
    expect(out.files.get('templates/cm.yaml')).toBe('metadata:\n  labels:\n    app: demo\n    rel: rel\n');
    expect(out.files.has('templates/_helpers.tpl')).toBe(false);
  });

  it('renders toYaml with indent/nindent, and tpl against the chart context', () => {
    expect(render('r:\n  {{- toYaml .Values.r | nindent 2 }}', 'r: { limits: { memory: 1Gi }, requests: { cpu: 100m } }')).toBe('r:\n  limits:\n    memory: 1Gi\n  requests:\n    cpu: 100m');
    expect(render('{{ tpl .Values.url . }}', 'url: "http://{{ .Release.Name }}-svc.{{ .Release.Namespace }}:{{ .Values.port }}"\nport: 9102')).toBe('http://rel-svc.ns:9102');
    expect(render('{{ "a\\nb" | indent 2 }}')).toBe('  a\n  b');
  });

  it('has the string functions the chart uses', () => {
    expect(render('{{ .Values.n | quote }} {{ default "d" .Values.none }} {{ printf "%s-%d" "x" 5 }} {{ "abcdef" | trunc 3 }} {{ "name-" | trimSuffix "-" }}', 'n: 8126')).toBe('"8126" d x-5 abc name');
    expect(render('{{ contains "plumb" "my-plumb" }} {{ "s" | b64enc }} {{ "s" | sha256sum }}')).toBe(`true cw== 043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf89`);
    expect(render('{{ print "a" 1 2 "b" }}')).toBe('a1 2b');
    expect(() => render('{{ required "x is required" .Values.x }}')).toThrow(/x is required/);
  });

  it('reads chart files and includes other templates by path', () => {
    const dir = chart({ 'a.yaml': 'k: {{ .Values.k }}\n', 'b.txt': '{{ include (print $.Template.BasePath "/a.yaml") . | sha256sum }} {{ .Files.Get "extra.txt" | trim }}' }, 'k: v');
    writeFileSync(join(dir, 'extra.txt'), 'file text');
    expect(() => renderChart(dir, { releaseName: 'r', namespace: 'n' })).toThrow(/function "trim" is not supported/);
    writeFileSync(join(dir, 'templates', 'b.txt'), '{{ include (print $.Template.BasePath "/a.yaml") . | sha256sum | trunc 8 }} {{ .Files.Get "extra.txt" }}');
    expect(renderChart(dir, { releaseName: 'r', namespace: 'n' }).files.get('templates/b.txt')).toMatch(/^[0-9a-f]{8} file text$/);
  });

  it('splits the output into YAML documents and skips empty ones', () => {
    const dir = chart({ 'x.yaml': '{{- if .Values.on }}\na: 1\n---\nb: 2\n{{- end }}\n---\n# only a comment\n' }, 'on: true');
    expect(renderChart(dir, { releaseName: 'r', namespace: 'n' }).documents.map((d) => d.object)).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('refuses what it does not implement rather than rendering it wrong', () => {
    expect(() => render('{{ lookup "v1" "Secret" "ns" "x" }}')).toThrow(/function "lookup" is not supported/);
    expect(() => render('{{ block "x" . }}{{ end }}')).toThrow(/block is not supported/);
    expect(() => render('{{ if true }}open')).toThrow(/missing \{\{ end \}\}/);
    expect(() => render('{{ .Values.list }}', 'list: [1]')).toThrow(/cannot print a list/);
  });
});
