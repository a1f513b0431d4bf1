// The peer in the proxy benchmark: nginx (Debian package) as a plain reverse proxy in front of the
// same tenant API, with an access log written to a file — what a platform team would otherwise put
// in front of a tenant API. No auditing, no policy, no fail-closed: the ratio shows what imp's
// audited proxy costs against an ordinary production one. One worker process, as the broker has
// one event loop.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path));

/** True when nginx is installed (scripts/install-test-deps.sh installs it). */
export const haveNginx = Boolean(NGINX);

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts nginx proxying to `upstream` (http://host:port); returns its URL, the access log and stop(). */
export async function startNginx(upstream) {
  if (!NGINX) throw new Error('nginx is not installed (apt-get install nginx)');
  const dir = mkdtempSync(join(tmpdir(), 'imp-bench-nginx-'));
  for (const sub of ['tmp', 'logs']) mkdirSync(join(dir, sub));
  const accessLog = join(dir, 'logs', 'access.log');
  const port = await freePort(); // nginx cannot listen on port 0
  const upstreamHost = new URL(upstream).host;
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process on;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
${process.getuid?.() === 0 ? 'user root;' : ''}
events { worker_connections 1024; }
http {
  access_log ${accessLog} combined;
  client_body_temp_path ${join(dir, 'tmp')};
  proxy_temp_path ${join(dir, 'tmp')};
  fastcgi_temp_path ${join(dir, 'tmp')};
  uwsgi_temp_path ${join(dir, 'tmp')};
  scgi_temp_path ${join(dir, 'tmp')};
  upstream tenant { server ${upstreamHost}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://tenant;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`,
  );
  const check = spawnSync(NGINX, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t: ${check.stderr}`);
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const up = await fetch(`${url}/healthz`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 200 || child.exitCode !== null) throw new Error('nginx did not start');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url,
    /** Lines in the access log (one per request nginx answered). */
    logged: () => readFileSync(accessLog, 'utf8').split('\n').filter(Boolean).length,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGQUIT'); // graceful: flushes the access log
      await exited;
    },
  };
}
