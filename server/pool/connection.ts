// Where the pool's Redis is and whether we may talk to it: redis:// or rediss:// (TLS), a password
// or an ACL user and password, a database number. A Redis that is not on this machine must ask for
// authentication (a queue's jobs name model folders and prompts, and a worker runs whatever job it
// is given), unless the user explicitly allows an open one. The password never appears in what we
// print.
import { isIP } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { AdaDiffError } from '../errors';

export class PoolError extends AdaDiffError {
  override readonly name = 'PoolError';
  readonly kind = 'pool';
}

export interface RedisTarget {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  db: number;
  /** The URL without its password, for messages and logs. */
  display: string;
}

export interface RedisUrlOptions {
  /** Accept a Redis on another machine without a password (a trusted network only). */
  allowUnauthenticated?: boolean;
  /** Overrides the URL's password (the editor keeps it in SecretStorage, the CLI may take it from the environment). */
  password?: string;
}

const DEFAULT_PORT = 6379;
const MAX_DB = 15;

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** Parses and checks a pool URL; every refusal says what to change. */
export function parseRedisUrl(text: string, options: RedisUrlOptions = {}): RedisTarget {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new PoolError(`"${redact(text)}" is not a Redis URL; expected redis://[user:password@]host[:port][/db] or rediss://... for TLS`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new PoolError(`${url.protocol}// is not a Redis URL scheme; use redis:// or rediss:// (TLS)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new PoolError(`${redact(text)}: no host`);
  const port = url.port ? Number(url.port) : DEFAULT_PORT;
  const dbText = url.pathname.replace(/^\//, '');
  if (dbText && !/^\d+$/.test(dbText)) throw new PoolError(`${redact(text)}: the path must be a database number (0-${MAX_DB}), got "${dbText}"`);
  const db = dbText ? Number(dbText) : 0;
  if (db > MAX_DB) throw new PoolError(`${redact(text)}: database ${db} is out of range (0-${MAX_DB})`);
  if (url.search || url.hash) throw new PoolError(`${redact(text)}: query and fragment are not supported; put the database number in the path`);
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const password = options.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  if (username && !password) throw new PoolError(`${redact(text)}: an ACL user needs a password (redis://user:password@host)`);
  if (!password && !isLoopback(host) && !options.allowUnauthenticated) {
    throw new PoolError(
      `refusing ${redact(text)}: a Redis on another machine must require a password (redis://:PASSWORD@host or an ACL user redis://user:PASSWORD@host); ` +
        'allow an open one only on a trusted network (--allow-unauthenticated-redis)',
    );
  }
  const tls = url.protocol === 'rediss:';
  const shownHost = isIP(host) === 6 ? `[${host}]` : host;
  const display = `${url.protocol}//${username ? `${encodeURIComponent(username)}@` : ''}${shownHost}:${port}${db ? `/${db}` : ''}`;
  return { host, port, tls, ...(username ? { username } : {}), ...(password ? { password } : {}), db, display };
}

/** The URL with any password replaced, for error messages about text we could not parse. */
export function redact(text: string): string {
  return text.replace(/(\/\/[^/@:]*:)[^@/]*@/, '$1***@');
}

/**
 * ioredis options for a target. `blocking`: the connection waits on Redis (a BullMQ worker or
 * event stream), so commands must queue through a reconnect instead of failing after retries.
 */
export function redisOptions(target: RedisTarget, blocking: boolean): RedisOptions {
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.tls ? { tls: { servername: isIP(target.host) ? undefined : target.host } } : {}),
    maxRetriesPerRequest: blocking ? null : 1,
    // Reconnect with a capped back-off; the coordinator's watchdog decides when "lost" is final.
    retryStrategy: (times) => Math.min(times * 200, 2000),
    connectTimeout: 5000,
  };
}

/** A plain connection, connected and answering PING, or a PoolError that says Redis is not reachable. */
export async function connectRedis(target: RedisTarget): Promise<Redis> {
  const client = new Redis({ ...redisOptions(target, false), lazyConnect: true, retryStrategy: () => null });
  // connect() rejects with "Connection is closed"; the cause (ECONNREFUSED, a TLS error) comes as an event.
  let cause: Error | undefined;
  client.on('error', (err: Error) => (cause ??= err));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    const message = (cause ?? (err as Error)).message;
    if (/NOAUTH|WRONGPASS|NOPERM/.test(message)) throw new PoolError(`Redis at ${target.display} refused the credentials: ${message}`);
    throw new PoolError(`cannot reach Redis at ${target.display}: ${message}`);
  }
  // From here on, reconnect as the other connections do.
  client.options.retryStrategy = redisOptions(target, false).retryStrategy;
  return client;
}
