import { describe, expect, it } from 'vitest';
import { compileGrok, PatternLibrary, type GrokFields } from '../../../../../agent/logs/grok/index.ts';

/** Sample lines written from each format's documentation, with the fields Logstash's legacy patterns give. */
const FAMILY_LINES: [string, string, GrokFields][] = [
    ["%{HTTPD_COMMONLOG}", "192.168.1.20 - - [28/Jul/2006:10:27:10 -0300] \"GET /cgi-bin/try/ HTTP/1.0\" 200 3395", {"clientip":"192.168.1.20","ident":"-","auth":"-","timestamp":"28/Jul/2006:10:27:10 -0300","verb":"GET","request":"/cgi-bin/try/","httpversion":"1.0","response":"200","bytes":"3395"}],
    ["%{COMBINEDAPACHELOG}", "203.0.113.9 - alice@example.com [10/Oct/2023:13:55:36 +0200] \"POST /api/v1/items?id=7 HTTP/1.1\" 201 - \"https://example.com/form\" \"curl/8.4.0\"", {"clientip":"203.0.113.9","ident":"-","auth":"alice@example.com","timestamp":"10/Oct/2023:13:55:36 +0200","verb":"POST","request":"/api/v1/items?id=7","httpversion":"1.1","response":"201","referrer":"\"https://example.com/form\"","agent":"\"curl/8.4.0\""}],
    ["%{COMBINEDAPACHELOG}", "2001:db8::1 - - [10/Oct/2023:13:55:36 +0200] \"\\x16\\x03\\x01\" 400 226 \"-\" \"-\"", {"clientip":"2001:db8::1","ident":"-","auth":"-","timestamp":"10/Oct/2023:13:55:36 +0200","rawrequest":"\\x16\\x03\\x01","response":"400","bytes":"226","referrer":"\"-\"","agent":"\"-\""}],
    ["%{HTTPD_ERRORLOG}", "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home/live/ap/htdocs/test", {"timestamp":"Wed Oct 11 14:32:52 2000","loglevel":"error","clientip":"127.0.0.1","message":"client denied by server configuration: /export/home/live/ap/htdocs/test"}],
    ["%{HTTPD_ERRORLOG}", "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:51234] AH00037: File does not exist: /usr/local/apache2/htdocs/favicon.ico", {"timestamp":"Fri Sep 09 10:42:29.902022 2011","module":"core","loglevel":"error","pid":"35708","tid":"4328636416","clientip":"72.15.99.187","clientport":"51234","errorcode":"AH00037","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}],
    ["%{SYSLOGLINE}", "Oct  5 13:55:36 web-01 sshd[1234]: Accepted publickey for deploy from 10.0.0.2 port 53422 ssh2", {"timestamp":"Oct  5 13:55:36","logsource":"web-01","program":"sshd","pid":"1234","message":"Accepted publickey for deploy from 10.0.0.2 port 53422 ssh2"}],
    ["%{SYSLOGLINE}", "2023-10-05T13:55:36.123+02:00 web-01.example.com kernel: [12345.678] eth0: link up", {"timestamp8601":"2023-10-05T13:55:36.123+02:00","logsource":"web-01.example.com","program":"kernel","message":"[12345.678] eth0: link up"}],
    ["%{SYSLOGBASE} %{GREEDYDATA:message}", "Oct 11 22:14:15 <4.2> mymachine su: 'su root' failed for lonvick on /dev/pts/8", {"timestamp":"Oct 11 22:14:15","facility":"4","priority":"2","logsource":"mymachine","program":"su","message":"'su root' failed for lonvick on /dev/pts/8"}],
    ["%{SYSLOG5424LINE}", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8", {"syslog5424_pri":"34","syslog5424_ver":"1","syslog5424_ts":"2003-10-11T22:14:15.003Z","syslog5424_host":"mymachine.example.com","syslog5424_app":"su","syslog5424_msgid":"ID47","syslog5424_msg":"'su root' failed for lonvick on /dev/pts/8"}],
    ["%{SYSLOG5424LINE}", "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] %% It's time to make the do-nuts.", {"syslog5424_pri":"165","syslog5424_ver":"1","syslog5424_ts":"2003-08-24T05:14:15.000003-07:00","syslog5424_host":"192.0.2.1","syslog5424_app":"myproc","syslog5424_proc":"8710","syslog5424_sd":"[exampleSDID@32473 iut=\"3\" eventSource=\"Application\"]","syslog5424_msg":"%% It's time to make the do-nuts."}],
    ["%{CRONLOG}", "Oct  5 04:05:01 web-01 CRON[4321]: (root) CMD (run-parts /etc/cron.hourly)", {"timestamp":"Oct  5 04:05:01","logsource":"web-01","program":"CRON","pid":"4321","user":"root","action":"CMD","message":"run-parts /etc/cron.hourly"}],
    ["%{JAVASTACKTRACEPART}", "\tat org.apache.catalina.core.StandardWrapperValve.invoke(StandardWrapperValve.java:233)", {"class":"org.apache.catalina.core.StandardWrapperValve","method":"invoke","file":"StandardWrapperValve.java","line":"233"}],
    ["%{JAVASTACKTRACEPART}", "        at sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)", {"class":"sun.reflect.NativeMethodAccessorImpl","method":"invoke0","file":"Native Method"}],
    ["%{JAVASTACKTRACEPART}", "    at com.example.Foo.<init>(Foo.java:12)", {"class":"com.example.Foo","method":"<init>","file":"Foo.java","line":"12"}],
    ["%{CATALINALOG}", "Jan 9, 2014 7:13:13 AM org.apache.catalina.startup.HostConfig deployDirectory Deploying web application directory /var/lib/tomcat/webapps/ROOT", {"timestamp":"Jan 9, 2014 7:13:13 AM","class":"org.apache.catalina.startup.HostConfig","logmessage":"deployDirectory Deploying web application directory /var/lib/tomcat/webapps/ROOT"}],
    ["%{TOMCATLOG}", "2014-01-09 20:03:28,269 -0800 | ERROR | com.example.service.ExampleService - something completely unexpected happened...", {"timestamp":"2014-01-09 20:03:28,269 -0800","level":"ERROR","class":"com.example.service.ExampleService","logmessage":"something completely unexpected happened..."}],
    ["%{HAPROXYHTTP}", "Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} \"GET /index.html HTTP/1.1\"", {"syslog_timestamp":"Feb  6 12:14:14","syslog_server":"localhost","program":"haproxy","pid":"14389","client_ip":"10.0.1.2","client_port":"33317","accept_date":"06/Feb/2009:12:14:14.655","haproxy_monthday":"06","haproxy_month":"Feb","haproxy_year":"2009","haproxy_time":"12:14:14","haproxy_hour":"12","haproxy_minute":"14","haproxy_second":"14","haproxy_milliseconds":"655","frontend_name":"http-in","backend_name":"static","server_name":"srv1","time_request":"10","time_queue":"0","time_backend_connect":"30","time_backend_response":"69","time_duration":"109","http_status_code":"200","bytes_read":"2750","captured_request_cookie":"-","captured_response_cookie":"-","termination_state":"----","actconn":"1","feconn":"1","beconn":"1","srvconn":"1","retries":"0","srv_queue":"0","backend_queue":"0","captured_request_headers":"1wt.eu","http_verb":"GET","http_request":"/index.html","http_version":"1.1"}],
    ["%{HAPROXYTCP}", "Feb  6 12:12:56 localhost haproxy[14387]: 10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0", {"syslog_timestamp":"Feb  6 12:12:56","syslog_server":"localhost","program":"haproxy","pid":"14387","client_ip":"10.0.1.2","client_port":"33313","accept_date":"06/Feb/2009:12:12:51.443","haproxy_monthday":"06","haproxy_month":"Feb","haproxy_year":"2009","haproxy_time":"12:12:51","haproxy_hour":"12","haproxy_minute":"12","haproxy_second":"51","haproxy_milliseconds":"443","frontend_name":"fnt","backend_name":"bck","server_name":"srv1","time_queue":"0","time_backend_connect":"0","time_duration":"5007","bytes_read":"212","termination_state":"--","actconn":"0","feconn":"0","beconn":"0","srvconn":"0","retries":"3","srv_queue":"0","backend_queue":"0"}],
    ["%{REDISLOG}", "[4018] 14 Nov 07:01:22.119 * Background saving terminated with success", {"pid":"4018","timestamp":"14 Nov 07:01:22.119"}],
    ["%{REDISMONLOG}", "1386090061.394431 [0 127.0.0.1:58541] \"SET\" \"foo\" \"bar\"", {"timestamp":"1386090061.394431","database":"0","client":"127.0.0.1","port":"58541","command":"SET","params":"\"foo\" \"bar\""}],
    ["%{MONGO3_LOG}", "2014-11-03T18:28:32.450-0500 I NETWORK  [initandlisten] waiting for connections on port 27017", {"timestamp":"2014-11-03T18:28:32.450-0500","severity":"I","component":"NETWORK","context":"initandlisten","message":"waiting for connections on port 27017"}],
    ["%{MONGO3_LOG}", "2020-05-01T10:00:00.000+0000 W -        [main] a warning without component", {"timestamp":"2020-05-01T10:00:00.000+0000","severity":"W","component":"-","context":"main","message":"a warning without component"}],
    ["%{MONGO_LOG}", "Mar 12 09:12:34 [conn42] end connection 127.0.0.1:50000", {"timestamp":"Mar 12 09:12:34","component":"conn42","message":"end connection 127.0.0.1:50000"}],
    ["%{MONGO_SLOWQUERY}", "query test.users query: { name: \"x\" } ntoreturn:0 ntoskip:0 nscanned:100 keyUpdates:0 nreturned:1 reslen:100 120ms", {"database":"test","collection":"users","query":"{ name: \"x\" }","ntoreturn":"0","ntoskip":"0","nscanned":"100","nreturned":"1","duration":"120"}],
    ["%{BIND9}", "17-Feb-2018 23:06:56.326 queries: info: client 172.26.0.1#12345 (test.example.com): query: test.example.com IN A +E(0)K (172.26.0.2)", {"timestamp":"17-Feb-2018 23:06:56.326","loglevel":"info","clientip":"172.26.0.1","clientport":"12345","query":["test.example.com","test.example.com"],"querytype":"A +E(0)K","dns":"172.26.0.2"}],
    ["%{BIND9}", "05-Mar-2021 10:01:02.003 queries: info: client @0x7f64500020ef 192.0.2.10#53211 (www.example.org): query: www.example.org IN AAAA + (192.0.2.53)", {"timestamp":"05-Mar-2021 10:01:02.003","loglevel":"info","clientip":"192.0.2.10","clientport":"53211","query":["www.example.org","www.example.org"],"querytype":"AAAA +","dns":"192.0.2.53"}],
    ["%{SQUID3}", "1525344856.899  16867 10.170.72.111 TCP_TUNNEL/200 6256 CONNECT logs.example.com:443 - HIER_DIRECT/93.184.216.34 -", {"timestamp":"1525344856.899","duration":"16867","client_address":"10.170.72.111","cache_result":"TCP_TUNNEL","status_code":"200","bytes":"6256","request_method":"CONNECT","url":"logs.example.com:443","user":"-","hierarchy_code":"HIER_DIRECT","server":"93.184.216.34","content_type":"-"}],
    ["%{S3_ACCESS_LOG}", "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - \"GET /awsexamplebucket1?versioning HTTP/1.1\" 200 - 113 - 7 - \"-\" \"S3Console/0.4\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV2 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.1", {"owner":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be","bucket":"awsexamplebucket1","timestamp":"06/Feb/2019:00:00:38 +0000","clientip":"192.0.2.3","requester":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be","request_id":"3E57427F3EXAMPLE","operation":"REST.GET.VERSIONING","key":"-","verb":"GET","request":"/awsexamplebucket1?versioning","httpversion":"1.1","response":200,"bytes":113,"request_time_ms":7,"referrer":"\"-\"","agent":"\"S3Console/0.4\""}],
    ["%{ELB_ACCESS_LOG}", "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000086 0.001048 0.001337 200 200 0 57 \"GET https://www.example.com:443/shop/cart?item=9 HTTP/1.1\" \"curl/7.38.0\" DHE-RSA-AES128-SHA TLSv1.2", {"timestamp":"2015-05-13T23:39:43.945958Z","elb":"my-loadbalancer","clientip":"192.168.131.39","clientport":2817,"backendip":"10.0.0.1","backendport":80,"request_processing_time":0.000086,"backend_processing_time":0.001048,"response_processing_time":0.001337,"response":200,"backend_response":200,"received_bytes":0,"bytes":57,"verb":"GET","request":"https://www.example.com:443/shop/cart?item=9","proto":"https","urihost":"www.example.com:443","port":"443","path":"/shop/cart","params":"?item=9","httpversion":"1.1"}],
    ["%{CLOUDFRONT_ACCESS_LOG}", "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit", {"timestamp":"2019-12-04\t21:02:31","x_edge_location":"LAX1","sc_bytes":392,"clientip":"192.0.2.100","cs_method":"GET","cs_host":"d111111abcdef8.cloudfront.net","cs_uri_stem":"/index.html","sc_status":200,"referrer":"-","agent":"Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)","cs_uri_query":"-","cookies":"-","x_edge_result_type":"Hit","x_edge_request_id":"SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==","x_host_header":"d111111abcdef8.cloudfront.net","cs_protocol":"https","cs_bytes":23,"time_taken":0.001,"x_forwarded_for":"-","ssl_protocol":"TLSv1.2","ssl_cipher":"ECDHE-RSA-AES128-GCM-SHA256","x_edge_response_result_type":"Hit"}],
];

function fields(pattern: string, line: string): GrokFields | null {
  return compileGrok({ patterns: pattern }).matchLine(line);
}

describe('built-in pattern library', () => {
  it('is loaded by default and comes from config/patterns', () => {
    const lib = PatternLibrary.builtin();
    for (const name of ['WORD', 'COMBINEDAPACHELOG', 'SYSLOGLINE', 'SYSLOG5424LINE', 'JAVASTACKTRACEPART', 'CATALINALOG', 'TOMCATLOG', 'HAPROXYHTTP', 'HAPROXYTCP', 'POSTGRESQL', 'REDISTIMESTAMP', 'REDISLOG', 'MONGO_LOG', 'MONGO3_LOG', 'BIND9', 'SQUID3', 'ELB_ACCESS_LOG', 'S3_ACCESS_LOG', 'CLOUDFRONT_ACCESS_LOG']) {
      expect(lib.has(name), name).toBe(true);
      expect(lib.get(name)!.source).toMatch(/config[\\/]patterns[\\/]/);
    }
  });

  it('every built-in pattern compiles on its own', () => {
    const lib = PatternLibrary.builtin();
    for (const name of lib.names()) {
      expect(() => compileGrok({ patterns: `%{${name}}`, library: lib }), name).not.toThrow();
    }
  });

  it.each(FAMILY_LINES)('%s matches a realistic line with the expected fields', (pattern, line, expected) => {
    expect(fields(pattern, line)).toEqual(expected);
  });

  it('POSTGRESQL reads the user, connection and pid of a pg_log line', () => {
    const f = fields('%{POSTGRESQL}', '2019-08-21 10:02:13 UTC postgres [local] 5d5d1cc5.1a2b 6699');
    expect(f).toMatchObject({ user_id: 'postgres', connection_id: '[local] 5d5d1cc5.1a2b', pid: '6699' });
    expect(f!.timestamp).toMatch(/08-21 10:02:13$/);
  });

  it('rejects lines of the wrong format', () => {
    expect(fields('%{COMBINEDAPACHELOG}', 'Oct  5 13:55:36 web-01 sshd[1234]: hello')).toBeNull();
    expect(fields('%{SYSLOG5424LINE}', '2023-01-01 plain text')).toBeNull();
    expect(fields('%{HAPROXYTCP}', 'Feb  6 12:12:56 localhost haproxy[14387]: not a tcp log')).toBeNull();
  });
});

describe('core patterns', () => {
  const cases: [string, string, string | null][] = [
    ['IPV4', 'from 192.168.0.1.', '192.168.0.1'],
    ['IPV4', 'ip 010.001.2.255 ok', '010.001.2.255'],
    ['IPV4', '256.1.1.1', null],
    ['IPV4', '1.2.3.4567', null],
    ['IPV6', '2001:0db8:85a3:0000:0000:8a2e:0370:7334', '2001:0db8:85a3:0000:0000:8a2e:0370:7334'],
    ['IPV6', 'fe80::1ff:fe23:4567:890a%eth0 up', 'fe80::1ff:fe23:4567:890a%eth0'],
    ['IPV6', 'peer ::1 closed', '::1'],
    ['IPV6', '::ffff:192.0.2.128', '::ffff:192.0.2.128'],
    ['IPV6', '64:ff9b::192.0.2.33', '64:ff9b::192.0.2.33'],
    ['IPV6', '1:2:3:4:5:6:10.0.0.1', '1:2:3:4:5:6:10.0.0.1'],
    ['IPV6', '2001:db8::', '2001:db8::'],
    ['IP', 'x 2001:db8::8:800:200c:417a y', '2001:db8::8:800:200c:417a'],
    ['HOSTNAME', 'host api-1.eu-west.example.com.', 'host'],
    ['IPORHOST', 'api-1.eu-west.example.com:443', 'api-1.eu-west.example.com'],
    ['HOSTPORT', 'connect db.internal:5432 now', 'db.internal:5432'],
    ['UUID', 'id=123e4567-e89b-12d3-a456-426614174000;', '123e4567-e89b-12d3-a456-426614174000'],
    ['MAC', 'hw 00:1A:2b:3C:4d:5E', '00:1A:2b:3C:4d:5E'],
    ['MAC', 'hw 001a.2b3c.4d5e', '001a.2b3c.4d5e'],
    ['MAC', 'hw 00-1A-2B-3C-4D-5E', '00-1A-2B-3C-4D-5E'],
    ['INT', 'n=-42', '-42'],
    ['NUMBER', 'took 12.5ms', '12.5'],
    ['NUMBER', 'v .5', '.5'],
    ['BASE16NUM', 'n=0x7fFF', '0x7fFF'],
    // Unanchored and leftmost, as in Logstash: hex letters in a word count.
    ['BASE16NUM', 'addr 0x7f', 'add'],
    ['POSINT', 'count 0 then 17', '17'],
    ['NONNEGINT', 'count 0', '0'],
    ['WORD', '  hello_world! ', 'hello_world'],
    ['NOTSPACE', '  a/b:c  ', 'a/b:c'],
    ['QUOTEDSTRING', 'say "a \\"quoted\\" word" now', '"a \\"quoted\\" word"'],
    ['QUOTEDSTRING', "it's 'single' ok", "'s '"],
    ['QUOTEDSTRING', 'x `tick` y', '`tick`'],
    ['QS', 'empty "" here', '""'],
    ['EMAILADDRESS', 'mail to ops.team+alerts@example.co.uk today', 'ops.team+alerts@example.co.uk'],
    ['USERNAME', 'user j.doe_1-x', 'user'],
    ['UNIXPATH', 'open /var/log/nginx/access.log failed', '/var/log/nginx/access.log'],
    ['UNIXPATH', 'file /srv/données/été.txt', '/srv/données/été.txt'],
    ['WINPATH', 'C:\\Windows\\System32\\drivers', 'C:\\Windows\\System32\\drivers'],
    ['PATH', 'at /usr/lib/x.so', '/usr/lib/x.so'],
    ['URI', 'GET https://user:pw@example.com:8443/a/b.html?x=1&y=2#top end', 'https://user:pw@example.com:8443/a/b.html?x=1&y=2#top'],
    ['URIPROTO', 'svn+ssh://host', 'svn+ssh'],
    ['URIPATHPARAM', '/search?q=grok&lang=en', '/search?q=grok&lang=en'],
    ['URIPATH', '/a/b/c?x', '/a/b/c'],
    ['URIPARAM', '/p?a=1&b=[2]', '?a=1&b=[2]'],
    ['MONTH', 'on März 3', 'März'],
    ['MONTH', 'on Sep 3', 'Sep'],
    ['MONTH', 'Octopus', null],
    ['MONTHNUM', '09', '09'],
    ['MONTHDAY', '31', '31'],
    ['DAY', 'Thursday', 'Thursday'],
    ['YEAR', '2024', '2024'],
    ['TIME', 'at 23:59:60.123 UTC', '23:59:60.123'],
    ['DATE_US', 'on 12/31/2023', '12/31/2023'],
    ['DATE_EU', 'am 31.12.2023', '31.12.2023'],
    ['DATESTAMP', '31.12.2023 23:59:59', '31.12.2023 23:59:59'],
    ['TIMESTAMP_ISO8601', 'ts=2024-02-29T12:34:56.789+05:30 x', '2024-02-29T12:34:56.789+05:30'],
    ['TIMESTAMP_ISO8601', '2024-02-29 12:34Z', '2024-02-29 12:34Z'],
    ['ISO8601_TIMEZONE', '+0530', '+0530'],
    ['HTTPDATE', '[10/Oct/2000:13:55:36 -0700]', '10/Oct/2000:13:55:36 -0700'],
    ['SYSLOGTIMESTAMP', 'Jan  5 01:02:03 host', 'Jan  5 01:02:03'],
    ['PROG', 'postfix/smtpd[123]', 'postfix/smtpd'],
    ['SYSLOGHOST', 'web-01 sshd', 'web-01'],
    ['SYSLOGFACILITY', '<13.6>', '<13.6>'],
    ['LOGLEVEL', '[WARNING] disk', 'WARNING'],
    ['LOGLEVEL', 'level=err', 'err'],
    ['LOGLEVEL', 'Information:', 'Information'],
    ['SPACE', 'a \t b', ''],
    ['DATA', 'anything', ''],
    ['GREEDYDATA', 'all of it', 'all of it'],
  ];

  it.each(cases)('%s in %j matches %j', (name, text, expected) => {
    const f = fields(`%{${name}:v}`, text);
    if (expected === null) expect(f).toBeNull();
    else expect(f?.v ?? '').toBe(expected);
  });

  it('SYSLOGFACILITY and SYSLOGPROG carry their own fields', () => {
    expect(fields('%{SYSLOGFACILITY}', '<13.6>')).toEqual({ facility: '13', priority: '6' });
    expect(fields('%{SYSLOGPROG}', 'nginx[77]')).toEqual({ program: 'nginx', pid: '77' });
    expect(fields('%{URIHOST}', 'example.com:8080')).toEqual({ port: '8080' });
  });
});
