/**
 * The index template plumb installs for its log events: ECS-style mappings for the fields the
 * agent writes (@timestamp, message, event.id, host.name, log.file.path, log.offset, tags), the
 * collector's pattern_id and pattern, and
 * strings as keywords otherwise, so parsed grok fields are searchable and aggregatable without
 * a mapping per pattern. With a data stream, the template declares it.
 */

export interface TemplateOptions {
  indexPatterns: string[];
  priority: number;
  dataStream: boolean;
}

export function logsIndexTemplate(o: TemplateOptions): Record<string, unknown> {
  return {
    index_patterns: o.indexPatterns,
    priority: o.priority,
    ...(o.dataStream ? { data_stream: {} } : {}),
    template: {
      mappings: {
        dynamic_templates: [
          { strings_as_keyword: { match_mapping_type: 'string', mapping: { type: 'keyword', ignore_above: 1024 } } },
        ],
        properties: {
          '@timestamp': { type: 'date' },
          message: { type: 'match_only_text' },
          tags: { type: 'keyword' },
          // log pattern mining (collector/patterns): the template's id and text
          pattern_id: { type: 'keyword' },
          pattern: { type: 'keyword', ignore_above: 4096 },
          event: { properties: { id: { type: 'keyword' }, dataset: { type: 'keyword' }, original: { type: 'keyword', index: false, doc_values: false } } },
          host: { properties: { name: { type: 'keyword' }, hostname: { type: 'keyword' } } },
          log: {
            properties: {
              level: { type: 'keyword' },
              offset: { type: 'long' },
              file: { properties: { path: { type: 'keyword' } } },
            },
          },
          http: { properties: { response: { properties: { status_code: { type: 'long' } } } } },
          source: { properties: { ip: { type: 'ip', ignore_malformed: true } } },
        },
      },
    },
    _meta: { managed_by: 'plumb', description: 'Log events shipped by plumb' },
  };
}
