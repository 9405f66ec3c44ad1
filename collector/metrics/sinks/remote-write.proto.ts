/**
 * Prometheus remote_write 1.0 messages, as prometheus/prompb/remote.proto and types.proto
 * define them (the fields a sender uses; gogoproto options dropped). Kept here as text so the
 * compiled build carries them; protobufjs parses them once at start-up.
 */
import protobuf from 'protobufjs';

export const REMOTE_WRITE_PROTO = `
syntax = "proto3";
package prometheus;

message WriteRequest {
  repeated prometheus.TimeSeries timeseries = 1;
  reserved 2;
  repeated prometheus.MetricMetadata metadata = 3;
}

message MetricMetadata {
  enum MetricType {
    UNKNOWN = 0;
    COUNTER = 1;
    GAUGE = 2;
    HISTOGRAM = 3;
    GAUGEHISTOGRAM = 4;
    SUMMARY = 5;
    INFO = 6;
    STATESET = 7;
  }
  MetricType type = 1;
  string metric_family_name = 2;
  string help = 4;
  string unit = 5;
}

message Sample {
  double value = 1;
  // timestamp is in ms format
  int64 timestamp = 2;
}

message TimeSeries {
  // For a timeseries to be valid, and for the samples and exemplars to be ingested by the
  // remote system properly, the labels field is required.
  repeated Label labels = 1;
  repeated Sample samples = 2;
}

message Label {
  string name = 1;
  string value = 2;
}
`;

const root = protobuf.parse(REMOTE_WRITE_PROTO, { keepCase: true }).root;

/** prometheus.WriteRequest */
export const WriteRequest = root.lookupType('prometheus.WriteRequest');

export interface WriteRequestMessage {
  timeseries: { labels: { name: string; value: string }[]; samples: { value: number; timestamp: number }[] }[];
  metadata?: { type: number; metric_family_name: string; help: string }[];
}

/** MetricMetadata.MetricType by exposition type. */
export const METRIC_TYPE: Record<string, number> = { counter: 1, gauge: 2, histogram: 3, summary: 5 };

export function encodeWriteRequest(message: WriteRequestMessage): Uint8Array {
  return WriteRequest.encode(message as unknown as protobuf.Message).finish();
}
