/** @module Process entry point: load config once, start the gateway, shut down gracefully on SIGTERM/SIGINT. */
import { ADAPTERS } from '../adapters/index.js';
import { ConfigError, DEV_API_KEY_FILE, loadConfig, loadEnvFile } from '../config/load.js';
import { StoreUnavailableError } from './core/errors.js';
import { createGateway } from './gateway.js';
import { createLogger } from './logger.js';

/** Exit codes of a failed start (sysexits.h), so supervisors and scripts can tell them apart. */
const EXIT = { config: 78, unavailable: 69, noPermission: 77 } as const;

/** Ends the start with one line for people on stderr, no stack trace. */
function refuse(code: number, line: string): never {
  process.stderr.write(`Switchboard cannot start: ${line}\n`);
  process.exit(code);
}

/** A listen error said plainly: which port, which setting, what to do. Undefined for other errors. */
function listenProblem(err: unknown, config: { PORT: number }): [number, string] | undefined {
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
  if (e?.syscall !== 'listen' || (e.code !== 'EADDRINUSE' && e.code !== 'EACCES')) return undefined;
  const port = e.port ?? config.PORT;
  const named = Object.entries(process.env)
    .filter(([k, v]) => /PORT$/.test(k) && v?.trim() === String(port))
    .map(([k]) => k);
  const setting = named.length > 0 ? named.join(' or ') : port === config.PORT ? 'PORT' : 'a port setting';
  const where = `port ${port}${e.address ? ` on ${e.address}` : ''} (${setting})`;
  if (e.code === 'EADDRINUSE')
    return [
      EXIT.unavailable,
      `${where} is already in use; stop the other process or set ${setting} to a free port.`,
    ];
  return [EXIT.noPermission, `${where} needs privileges this process does not have; use a port above 1023.`];
}

/** Time allowed after SHUTDOWN_TIMEOUT_MS for the last steps (webhook grace, closing the store). */
const SHUTDOWN_BACKSTOP_MS = 10_000;

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  let envFile = false;
  try {
    envFile = loadEnvFile('.env');
  } catch (err) {
    refuse(EXIT.config, `cannot read .env: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    config = loadConfig(process.env, ADAPTERS, { devKeyFile: DEV_API_KEY_FILE });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT.config);
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL);
  if (envFile) logger.info('settings read from .env (variables set in the environment win over it)');
  let gateway: Awaited<ReturnType<typeof createGateway>>;
  try {
    gateway = await createGateway(config, logger);
    await gateway.start();
  } catch (err) {
    const listen = listenProblem(err, config);
    if (listen) refuse(...listen);
    if (err instanceof StoreUnavailableError) {
      const cause =
        err.cause instanceof Error ? `: ${err.cause.message.replace(/\/\/[^@/\s]*@/g, '//***@')}` : '';
      refuse(EXIT.unavailable, `Redis (REDIS_URL) cannot be reached${cause}.`);
    }
    throw err;
  }
  let signals = 0;
  const onSignal = (signal: string) => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'signal received');
    // The gateway bounds its own shutdown by SHUTDOWN_TIMEOUT_MS; this is the backstop should a step
    // after it (webhooks, the store connection) hang.
    setTimeout(() => {
      logger.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutdown did not finish in time: exiting now');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS + SHUTDOWN_BACKSTOP_MS).unref();
    gateway.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((err) => {
  process.stderr.write(`fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
