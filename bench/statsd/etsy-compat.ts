/**
 * Preloaded into Etsy statsd 0.9 (`node --import`) so it runs on the same Node as plumb: statsd
 * logs with `util.log`, which Node 23 removed. This puts back an equivalent (timestamp, message,
 * stdout). Only logging goes through it; statsd's packet path is untouched.
 */
import util from 'node:util';

const utilWithLog = util as typeof util & { log?: (...args: unknown[]) => void };
if (typeof utilWithLog.log !== 'function') {
  utilWithLog.log = (...args: unknown[]): void => {
    process.stdout.write(`${new Date().toISOString()} - ${util.format(...args)}\n`);
  };
}
