// Nchan (nginx + the nchan module, Debian's libnginx-mod-nchan) as a peer in the same run: the
// gateway's closest off-the-shelf equivalent for HTTP-published SSE fan-out. One nginx process
// (no master, one worker, so its CPU and RSS are one pid's), channels in nchan's shared memory
// (no Redis), a channel per task: `POST /pub/<task>` publishes (the body is the event's `data`,
// `X-EventSource-Event` its SSE event name), `GET /sub/<task>` with `Accept: text/event-stream`
// subscribes, `DELETE /pub/<task>` ends the subscribers' streams (after the terminal event).
// It has no resume from the Redis log, no WebSocket here and no script publisher: the runner
// measures it in the HTTP-published scenarios and `idle` only.
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"

export const NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
const NGINX = "/usr/sbin/nginx"

/** Why Nchan cannot run on this machine, or undefined when it can. */
export const nchanMissing = (): string | undefined =>
  !existsSync(NGINX) ? "nginx is not installed (apt-get install nginx libnginx-mod-nchan)"
    : !existsSync(NCHAN_MODULE) ? "the nchan module is not installed (apt-get install libnginx-mod-nchan)"
    : undefined

/** Writes the configuration for `port` under `dir` and returns the command that runs nginx in the foreground. */
export const nchanCommand = (port: number, dir: string): string[] => {
  mkdirSync(join(dir, "body"), { recursive: true })
  const conf = join(dir, "nginx.conf")
  writeFileSync(conf, `load_module ${NCHAN_MODULE};
daemon off;
master_process off;
worker_processes 1;
error_log stderr warn;
pid ${join(dir, "nginx.pid")};
events { worker_connections 30000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "body")};
  keepalive_requests 1000000;
  nchan_max_reserved_memory 512M;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location ~ ^/pub/(.+)$ { nchan_publisher; nchan_channel_id $1; nchan_message_buffer_length 200; }
    location ~ ^/sub/(.+)$ { nchan_subscriber; nchan_channel_id $1; }
  }
}
`)
  return [NGINX, "-p", dir, "-c", conf]
}

/** Waits until something accepts TCP connections on `port` (nginx prints no readiness line). */
export const waitForPort = async (port: number, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const open = await new Promise<boolean>((done) => {
      Bun.connect({ hostname: "127.0.0.1", port, socket: { open: (s) => { s.end(); done(true) }, data() {}, error: () => done(false), connectError: () => done(false) } })
        .catch(() => done(false))
    })
    if (open) return
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`)
    await Bun.sleep(50)
  }
}
