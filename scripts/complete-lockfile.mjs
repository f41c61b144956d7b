#!/usr/bin/env node
/**
 * Completes package-lock.json with the other platforms' optional binaries (Biome, Rollup, msgpackr)
 * when the registry mirror it was made against does not serve them: npm then leaves them out of the
 * lockfile, and `npm ci` refuses such a lockfile as out of sync. Each entry gets the version its parent
 * declares and the os/cpu/libc its name encodes, so npm skips it on other platforms without fetching,
 * as it would with a lockfile made against the full registry. Run after `npm install`.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages;

function platform(name) {
  const tail = name.split('/').pop();
  const os = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'openharmony', 'win32'].find((o) =>
    tail.includes(`-${o}-`),
  );
  const cpu = ['arm64', 'x64', 'ia32', 'loong64', 'ppc64', 'riscv64', 's390x', 'arm'].find((c) =>
    new RegExp(`-${c}(-|$)`).test(tail),
  );
  if (!os || !cpu) return null;
  const libc = os !== 'linux' ? undefined : /musl/.test(tail) ? 'musl' : 'glibc';
  return { os: [os], cpu: [cpu], ...(libc ? { libc: [libc] } : {}) };
}

let added = 0;
for (const [key, entry] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const base = key === '' ? '' : `${key}/`;
    const candidates = [`${base}node_modules/${dep}`, `node_modules/${dep}`];
    if (candidates.some((c) => packages[c])) continue;
    const target = platform(dep);
    if (!target) continue;
    packages[`node_modules/${dep}`] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      ...target,
    };
    added += 1;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added} optional platform entries`);
