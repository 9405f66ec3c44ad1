/**
 * Logstash's own legacy pattern files, kept byte for byte in test/fixtures, loaded through a
 * patterns directory exactly as a Logstash user would point patterns_dir at them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileGrok, parsePatternText, PatternLibrary, type GrokFields } from '../../../../../agent/logs/grok/index.ts';

const DIR = join(import.meta.dirname, '../../../../fixtures/grok/logstash-legacy/patterns');
// firewalls refers to NAGIOSTIME from Logstash's nagios file, which is not among the fixtures.
const NAGIOSTIME = { NAGIOSTIME: '\\[%{NUMBER:nagios_epoch}\\]' };
const legacy = new PatternLibrary().loadPath(DIR).define('NAGIOSTIME', NAGIOSTIME.NAGIOSTIME);

function legacyFields(pattern: string, line: string): GrokFields | null {
  return compileGrok({ patterns: pattern, library: legacy }).matchLine(line);
}

describe('Logstash legacy pattern files', () => {
  it('load unchanged: every definition in every file is read', () => {
    let count = 0;
    for (const file of readdirSync(DIR)) {
      const defs = parsePatternText(readFileSync(join(DIR, file), 'utf8'), file);
      expect(defs.length, file).toBeGreaterThan(0);
      for (const d of defs) expect(legacy.has(d.name), d.name).toBe(true);
      count += defs.length;
    }
    expect(count).toBeGreaterThan(200);
  });

  it('every pattern compiles', () => {
    for (const name of legacy.names()) {
      expect(() => compileGrok({ patterns: `%{${name}}`, library: legacy }), name).not.toThrow();
    }
  });

  it('load through patternsDir over the built-in library', () => {
    const g = compileGrok({ patterns: '%{SHOREWALL}', patternsDir: DIR, definitions: NAGIOSTIME });
    expect(g.matchLine('May 28 17:23:25 myHost kernel: Shorewall:FORWARD:REJECT:IN=eth2 OUT=eth2 SRC=1.2.3.4 DST=5.6.7.8 LEN=141 TOS=0x00 PREC=0x00 TTL=63 ID=55251 PROTO=UDP SPT=5353 DPT=5335 LEN=121')).not.toBeNull();
  });

  const sameAsBuiltin: [string, string][] = [
    ['%{COMBINEDAPACHELOG}', '203.0.113.9 - alice@example.com [10/Oct/2023:13:55:36 +0200] "POST /api/v1/items?id=7 HTTP/1.1" 201 - "https://example.com/form" "curl/8.4.0"'],
    ['%{HTTPD_ERRORLOG}', '[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:51234] AH00037: File does not exist: /usr/local/apache2/htdocs/favicon.ico'],
    ['%{SYSLOGLINE}', 'Oct  5 13:55:36 web-01 sshd[1234]: Accepted publickey for deploy from 10.0.0.2 port 53422 ssh2'],
    ['%{HAPROXYHTTP}', 'Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"'],
    ['%{HAPROXYTCP}', 'Feb  6 12:12:56 localhost haproxy[14387]: 10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0'],
    ['%{SQUID3}', '1525344856.899  16867 10.170.72.111 TCP_TUNNEL/200 6256 CONNECT logs.example.com:443 - HIER_DIRECT/93.184.216.34 -'],
    ['%{ELB_ACCESS_LOG}', '2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000086 0.001048 0.001337 200 200 0 57 "GET https://www.example.com:443/shop/cart?item=9 HTTP/1.1" "curl/7.38.0" DHE-RSA-AES128-SHA TLSv1.2'],
    ['%{TOMCATLOG}', '2014-01-09 20:03:28,269 -0800 | ERROR | com.example.service.ExampleService - something completely unexpected happened...'],
    ['%{REDISLOG}', '[4018] 14 Nov 07:01:22.119 * Background saving terminated with success'],
    ['%{URI:u} %{IP:ip} %{UUID:id} %{MAC:mac} %{QS:q}', 'https://user:pw@example.com:8443/a/b.html?x=1&y=2#top fe80::1ff:fe23:4567:890a 123e4567-e89b-12d3-a456-426614174000 00:1A:2b:3C:4d:5E "a \\"q\\" b"'],
  ];

  it.each(sameAsBuiltin)('%s gives the same fields as plumb\'s built-in patterns', (pattern, line) => {
    const expected = compileGrok({ patterns: pattern }).matchLine(line);
    expect(expected).not.toBeNull();
    expect(legacyFields(pattern, line)).toEqual(expected);
  });

  it('SHOREWALL (uses the stacked quantifier .?*)', () => {
    expect(legacyFields('%{SHOREWALL}', 'May 28 17:23:25 myHost kernel: [3124658.791874] Shorewall:FORWARD:REJECT:IN=eth2 OUT=eth2 SRC=1.2.3.4 DST=1.2.3.4 LEN=141 TOS=0x00 PREC=0x00 TTL=63 ID=55251 PROTO=UDP SPT=5353 DPT=5335 LEN=121')).toEqual({
      timestamp: 'May 28 17:23:25', nf_host: 'myHost', nf_action1: 'FORWARD', nf_action2: 'REJECT', nf_in_interface: 'eth2',
      nf_out_interface: 'eth2', nf_src_ip: '1.2.3.4', nf_dst_ip: '1.2.3.4', nf_len: '141', nf_tos: '0x00', nf_prec: '0x00',
      nf_ttl: '63', nf_id: '55251', nf_protocol: 'UDP', nf_src_port: '5353', nf_dst_port: '5335',
    });
  });

  it('CISCOFW106023', () => {
    expect(legacyFields('%{CISCOFW106023}', 'Deny tcp src outside:192.168.1.1/50240 dst inside:192.168.1.2/23 by access-group "S_OUTSIDE_TO_INSIDE" [0x54c7fa80, 0x0]')).toEqual({
      action: 'Deny', protocol: 'tcp', src_interface: 'outside', src_ip: '192.168.1.1', src_port: '50240', dst_interface: 'inside',
      dst_ip: '192.168.1.2', dst_port: '23', policy_id: 'S_OUTSIDE_TO_INSIDE', hashcode1: '0x54c7fa80', hashcode2: '0x0',
    });
  });

  it('EXIM keeps captures from every iteration of its repeated group, as Oniguruma does', () => {
    expect(legacyFields('%{EXIM_MESSAGE_ARRIVAL}', '2017-04-25 18:15:58 1d2sRy-0001mw-7c <= sender@example.com H=mail.example.com [192.0.2.10]:52555 P=esmtps S=1234 id=msg-1@example.com T="Hello" for rcpt@example.org')).toEqual({
      timestamp: '2017-04-25 18:15:58', exim_year: '2017', exim_month: '04', exim_day: '25', exim_time: '18:15:58',
      exim_msgid: '1d2sRy-0001mw-7c', exim_flags: '<=', exim_sender_email: 'sender@example.com', remote_hostname: 'mail.example.com',
      remote_host: '192.0.2.10', remote_port: '52555', protocol: 'esmtps', exim_msg_size: '1234', exim_header_id: 'msg-1@example.com',
      exim_subject: '"Hello"', exim_recipient_email: 'rcpt@example.org',
    });
  });

  it('BACULA_LOGLINE, typed BIND9 and SYSLOG5424LINE, CLOUDFRONT with its (?<timestamp>…) group', () => {
    expect(legacyFields('%{BACULA_LOGLINE}', '09-Jan 19:53 backup-dir JobId 1234: Start Backup JobId 1234, Job=nightly.2015-01-09_19.53.00_05')).toEqual({
      bts: '09-Jan 19:53', hostname: 'backup-dir', jobid: '1234', job: 'nightly.2015-01-09_19.53.00_05',
    });
    expect(legacyFields('%{BIND9}', '17-Feb-2018 23:06:56.326 queries: info: client 172.26.0.1#12345 (test.example.com): query: test.example.com IN A +E(0)K (172.26.0.2)')).toEqual({
      timestamp: '17-Feb-2018 23:06:56.326', loglevel: 'info', clientip: '172.26.0.1', clientport: 12345,
      query: ['test.example.com', 'test.example.com'], querytype: 'A +E(0)K', dns: '172.26.0.2',
    });
    expect(legacyFields('%{SYSLOG5424LINE}', "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed")).toMatchObject({
      syslog5424_pri: 34, syslog5424_ver: 1, syslog5424_app: 'su', syslog5424_msgid: 'ID47', syslog5424_msg: "'su root' failed",
    });
    const cf = ['2019-12-04', '21:02:31', 'LAX1', '392', '192.0.2.100', 'GET', 'd1.cloudfront.net', '/index.html', '200', '-', 'Mozilla/5.0', '-', '-', 'Hit', 'SOX4xw==', 'd1.cloudfront.net', 'https', '23', '0.001', '-', 'TLSv1.2', 'ECDHE-RSA-AES128-GCM-SHA256', 'Hit'].join('\t');
    expect(legacyFields('%{CLOUDFRONT_ACCESS_LOG}', cf)).toMatchObject({ timestamp: '2019-12-04\t21:02:31', sc_bytes: 392, sc_status: 200, cs_bytes: 23, time_taken: 0.001 });
  });

  it('Unicode-aware POSIX classes and German month names', () => {
    expect(legacyFields('%{UNIXPATH:p}', 'file /srv/données/été.txt')).toEqual({ p: '/srv/données/été.txt' });
    expect(legacyFields('%{MONTH:m} %{MONTHDAY:d}', 'am März 3')).toEqual({ m: 'März', d: '3' });
  });

  it('a later file or definition overrides an earlier one (HAPROXY captured headers)', () => {
    const lib = legacy.clone().define('HAPROXYCAPTUREDREQUESTHEADERS', '%{DATA:request_header_host}\\|%{DATA:request_header_user_agent}');
    const f = compileGrok({ patterns: '%{HAPROXYHTTP}', library: lib }).matchLine(
      'Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {example.com|curl/8} {} "GET / HTTP/1.1"',
    );
    expect(f).toMatchObject({ request_header_host: 'example.com', request_header_user_agent: 'curl/8', http_request: '/' });
  });
});
