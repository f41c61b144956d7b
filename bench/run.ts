/**
 * `npm run bench`: runs every scenario against a private redis-server (or BENCH_REDIS_URL) and prints
 * one table. Figures are ratios against baselines measured in the same run; absolute numbers on a
 * shared machine mean little. Exits non-zero when a correctness count (duplicates, order, lost) is not 0.
 */
import { RedisServer } from '../test/helpers/redis.js';
import type { BenchRow } from './lib.js';
import * as engine from './scenarios/engine.js';

type Scenario = { name: string; run(redisUrl: string): Promise<BenchRow[]> };

async function optional(path: string, name: string): Promise<Scenario | null> {
  try {
    const mod = (await import(path)) as { run(redisUrl: string): Promise<BenchRow[]> };
    return { name, run: mod.run };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return null;
    throw err;
  }
}

function fmt(n: number | undefined, digits = 2): string {
  if (n === undefined) return '';
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(digits);
}

async function main(): Promise<void> {
  const only = process.argv[2];
  const external = process.env.BENCH_REDIS_URL;
  const fsync = process.env.BENCH_REDIS_FSYNC === 'always' ? 'always' : 'everysec';
  const redis = external ? null : await RedisServer.start({ fsync });
  process.stderr.write(
    external ? `Redis: ${external}\n` : `Redis: private redis-server, append-only file, fsync ${fsync}\n`,
  );
  const redisUrl = external ?? redis!.url;
  const scenarios: Scenario[] = [{ name: 'engine', run: engine.run }];
  for (const name of [
    'twilio',
    'slack',
    'replication',
    'people',
    'webhooks',
    'limits',
    'roles',
    'tracing',
    'typing',
    'pacing',
    'peer',
  ]) {
    const s = await optional(`./scenarios/${name}.js`, name);
    if (s) scenarios.push(s);
  }
  const rows: BenchRow[] = [];
  try {
    for (const scenario of scenarios) {
      if (only && scenario.name !== only) continue;
      process.stderr.write(`running ${scenario.name}...\n`);
      rows.push(...(await scenario.run(redisUrl)));
    }
  } finally {
    await redis?.dispose();
  }
  const table = [
    ['scenario', 'metric', 'value', 'baseline', 'ratio', 'rounds', 'target', 'ok'],
    ...rows.map((r) => [
      r.scenario,
      r.metric,
      fmt(r.value),
      fmt(r.baseline),
      r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`,
      r.spread
        ? `${fmt(r.spread[0])}-${fmt(r.spread[1])}${r.metric === 'ms' && r.ratio === undefined ? ' ms' : 'x'}`
        : '',
      r.target ?? '',
      r.ok === undefined ? '' : r.ok ? 'yes' : 'NO',
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(table[0]!));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table.slice(1)) console.log(line(row));
  const broken = rows.filter((r) => r.metric === 'count' && r.ok === false);
  if (broken.length > 0) {
    console.error(`correctness violated: ${broken.map((r) => r.scenario).join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
