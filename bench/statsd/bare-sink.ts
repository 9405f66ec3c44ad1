/**
 * The ceiling reference: a bare Node dgram socket that only counts lines. Whatever plumb does
 * beyond this (parsing, aggregating) is the price of doing real work.
 *
 *   node bench/statsd/bare-sink.ts PORT RECEIVE_BUFFER_BYTES
 *
 * Run with an IPC channel: answers any message with `{ lines, datagrams, receiveBuffer }`.
 */
import dgram from 'node:dgram';

const port = Number(process.argv[2]);
const receiveBuffer = Number(process.argv[3]);
if (!(port > 0) || !(receiveBuffer > 0) || typeof process.send !== 'function') {
  process.stderr.write('usage: node bench/statsd/bare-sink.ts PORT RECEIVE_BUFFER_BYTES (with an IPC channel)\n');
  process.exit(2);
}

const counts = { lines: 0, datagrams: 0 };

function countLines(msg: Buffer): void {
  counts.datagrams++;
  if (msg.length === 0) return;
  let n = 1;
  let pos = msg.indexOf(0x0a);
  while (pos >= 0) {
    if (pos < msg.length - 1) n++;
    pos = msg.indexOf(0x0a, pos + 1);
  }
  counts.lines += n;
}

const socket = dgram.createSocket('udp4');
socket.on('message', countLines);
socket.bind(port, '127.0.0.1', () => {
  socket.setRecvBufferSize(receiveBuffer);
  process.send?.({ ready: true, receiveBuffer: socket.getRecvBufferSize() });
});
process.on('message', () => {
  process.send?.({ lines: counts.lines, datagrams: counts.datagrams, receiveBuffer: socket.getRecvBufferSize() });
});
process.on('disconnect', () => process.exit(0));
