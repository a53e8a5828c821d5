// A real Ferry stack for the browser tests: `ferry dev` (private redis-server, SQLite store,
// worker, scheduler, API without auth) on free loopback ports, and `ferry server start` with
// bearer-token auth on the same store and Redis, as an operator's deployment would run it.
import {spawn, execFileSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync, existsSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createInterface} from 'node:readline';

// Waits for the first line of `child`'s stdout that parses as JSON (the --json banner).
function firstJsonLine(child, what, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const rl = createInterface({input: child.stdout});
    const timer = setTimeout(() => reject(new Error(`${what}: no JSON banner within ${timeoutMs} ms`)), timeoutMs);
    rl.on('line', (line) => {
      try {
        const v = JSON.parse(line);
        clearTimeout(timer);
        resolve(v);
      } catch { /* a log line */ }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited with ${code}`)); });
  });
}

export async function startStack({ferry, secrets}) {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-console-'));
  const logs = [];
  const children = [];
  // Failed runs become remediation candidates (no agent is configured, so they stay pending).
  const env = {...process.env, FERRY_LOG_LEVEL: 'warn', FERRY_REMEDIATION_ENABLED: 'yes'};
  for (const [k, v] of Object.entries(secrets || {})) env[`FERRY_SECRET_${k}`] = v;
  delete env.FERRY_DATA_DIR;
  delete env.FERRY_LISTEN;

  const launch = (args, what) => {
    const child = spawn(ferry, args, {cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe']});
    child.stderr.on('data', (d) => logs.push(`[${what}] ${d}`));
    children.push(child);
    return child;
  };

  const dataDir = join(dir, '.ferry');
  const dev = launch(['dev', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--json'], 'ferry dev');
  const devBanner = await firstJsonLine(dev, 'ferry dev');
  const endpoints = JSON.parse(readFileSync(join(dataDir, 'dev.json'), 'utf8'));
  // The console's address, as the banner prints it.
  const devUrl = devBanner.console.replace(/\/$/, '');
  if (`${devUrl}/api/v1` !== devBanner.api) throw new Error(`ferry dev banner: ${JSON.stringify(devBanner)}`);

  const server = launch(['server', 'start', '--listen', '127.0.0.1:0', '--store', endpoints.store,
                         '--redis-url', endpoints.redis_url, '--no-sweeper', '--json'], 'ferry server');
  const serverBanner = await firstJsonLine(server, 'ferry server');
  const serverUrl = serverBanner.api.replace(/\/api\/v1$/, '');

  // `ferry token create`, straight in the store, as an operator would; returns the secret.
  const createToken = (name, scopes) => {
    const created = JSON.parse(execFileSync(ferry, ['token', 'create', name, '--scopes', scopes,
                                                    '--store', endpoints.store, '--json'], {cwd: dir, env}).toString());
    if (!/^fy_[0-9a-f]{64}$/.test(created.token || '')) throw new Error(`token create gave ${JSON.stringify(created)}`);
    return created.token;
  };
  const token = createToken('console-test', 'admin');

  return {
    dir, devUrl, serverUrl, token, store: endpoints.store, createToken,
    logs: () => logs.join(''),
    async stop() {
      for (const c of children.reverse()) {
        if (c.exitCode !== null) continue;
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), 15000);
        await exited;
        clearTimeout(timer);
      }
      if (existsSync(dir)) rmSync(dir, {recursive: true, force: true});
    },
  };
}
