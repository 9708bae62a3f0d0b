// Static checks of the container files (issue 5): there is no Docker engine on
// our machines, so the Dockerfile, compose.yaml and deploy/nginx.conf are
// validated by linters, by parsing, and nginx's config by running real nginx
// (when installed) in front of stub upstreams on loopback.
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

// ---- Dockerfile ----------------------------------------------------------

interface Instruction { readonly op: string; readonly args: string }
interface Stage { readonly from: string; readonly name?: string; readonly body: ReadonlyArray<Instruction> }

/** Instructions grouped by build stage; comments dropped, `\` continuations joined. */
const dockerfileStages = (text: string): ReadonlyArray<Stage> => {
  const logical = text
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("#"))
    .join("\n")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const stages: Array<{ from: string; name?: string; body: Array<Instruction> }> = [];
  for (const line of logical) {
    const [, op = "", args = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === "FROM") {
      const [from = "", , name] = args.split(/\s+/);
      stages.push({ from, name, body: [] });
    } else {
      stages.at(-1)?.body.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
};

const stages = dockerfileStages(read("Dockerfile"));
const final = stages.at(-1)!;
const finalOps = (op: string) => final.body.filter((i) => i.op === op);
/** The JSON array of an exec-form instruction, e.g. CMD ["bun", "x.ts"]. */
const execForm = (args: string): Array<string> => JSON.parse(args.slice(args.indexOf("[")));

describe("Dockerfile", () => {
  it("is multi-stage and runs on an official Bun image", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(final.from).toMatch(/^oven\/bun:/);
  });

  it("installs production dependencies only, from the lock file", () => {
    const installs = stages.flatMap((s) => s.body).filter((i) => i.op === "RUN" && /npm (ci|install)/.test(i.args));
    expect(installs.length).toBe(1);
    expect(installs[0]!.args).toContain("--omit=dev");
    expect(final.body.some((i) => i.op === "RUN" && /(npm|bun) (ci|install)/.test(i.args))).toBe(false);
  });

  it("copies into the final stage only src/, package files and production node_modules", () => {
    const sources = finalOps("COPY").map((i) => {
      const words = i.args.split(/\s+/).filter((w) => !w.startsWith("--"));
      const fromStage = /--from=(\S+)/.exec(i.args)?.[1];
      return { fromStage, paths: words.slice(0, -1) };
    });
    const local = sources.filter((s) => s.fromStage === undefined).flatMap((s) => s.paths).sort();
    expect(local).toEqual(["package.json", "src"]);
    const copied = sources.filter((s) => s.fromStage !== undefined);
    expect(copied.length).toBe(1);
    expect(copied[0]!.paths).toEqual(["/app/node_modules"]);
    const depsStage = stages.find((s) => s.name === copied[0]!.fromStage);
    expect(depsStage?.body.some((i) => i.op === "RUN" && i.args.includes("--omit=dev"))).toBe(true);
  });

  it("runs as a non-root user", () => {
    const user = finalOps("USER").at(-1)?.args ?? "root";
    expect(["root", "0", "0:0"]).not.toContain(user);
  });

  it("starts the gateway like `npm start`, as PID 1, stopped by SIGTERM", () => {
    const start = JSON.parse(read("package.json")).scripts.start as string;
    expect(execForm(finalOps("CMD").at(-1)!.args).join(" ")).toBe(start);
    expect(finalOps("STOPSIGNAL").at(-1)?.args).toBe("SIGTERM");
    expect(finalOps("EXPOSE").map((i) => i.args)).toContain("8080");
  });

  it("has a HEALTHCHECK on /healthz", () => {
    const check = finalOps("HEALTHCHECK").at(-1)?.args ?? "";
    expect(check).toContain("/healthz");
  });

  it("keeps the build context to package files and src/", () => {
    const rules = read(".dockerignore").split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
    expect(rules[0]).toBe("*");
    expect(rules.slice(1).sort()).toEqual(["!package-lock.json", "!package.json", "!src/"]);
  });

  it("passes dockerfilelint", () => {
    const run = Bun.spawnSync([bin("dockerfilelint"), join(root, "Dockerfile")]);
    expect({ exit: run.exitCode, out: run.stdout.toString() }).toMatchObject({ exit: 0 });
  });
});

// The HEALTHCHECK command itself, run with this bun against stub servers.
describe("Dockerfile HEALTHCHECK command", () => {
  const command = execForm(finalOps("HEALTHCHECK").at(-1)!.args.replace(/^.*?CMD\s+/, "CMD "));
  // Async spawn: the stub server runs in this process and must keep answering.
  const probe = (port: number) =>
    Bun.spawn([process.execPath, ...command.slice(1)], { env: { ...process.env, PORT: String(port) } }).exited;

  it("is a bun command (the slim image has no curl)", () => {
    expect(command[0]).toBe("bun");
  });

  it("succeeds when /healthz answers 200", async () => {
    using server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) =>
      new URL(req.url).pathname === "/healthz" ? Response.json({ status: "ok" }) : new Response(null, { status: 404 }) });
    expect(await probe(server.port!)).toBe(0);
  });

  it("fails when /healthz answers an error or nothing listens", async () => {
    using server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(null, { status: 503 }) });
    expect(await probe(server.port!)).not.toBe(0);
    const port = server.port!;
    server.stop(true);
    expect(await probe(port)).not.toBe(0);
  });
});

// ---- compose.yaml ----------------------------------------------------------

type Service = Record<string, any>;
const compose = Bun.YAML.parse(read("compose.yaml")) as { services: Record<string, Service> };
const { redis, gateway, lb } = compose.services as Record<"redis" | "gateway" | "lb", Service>;

/** Compose durations such as "15s", "1m30s" in milliseconds. */
const durationMs = (text: string): number =>
  [...text.matchAll(/(\d+)(ms|s|m|h)/g)].reduce(
    (sum, [, n, unit]) => sum + Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as "ms"],
    0,
  );

describe("compose.yaml", () => {
  it("runs Redis 7 with an append-only file and a health check", () => {
    expect(redis.image).toMatch(/^redis:7/);
    expect(redis.command.join(" ")).toContain("--appendonly yes");
    expect(redis.healthcheck.test).toEqual(["CMD", "redis-cli", "ping"]);
  });

  it("runs two gateway replicas built from this Dockerfile on that Redis", () => {
    expect(gateway.build).toBe(".");
    expect(gateway.deploy.replicas).toBe(2);
    expect(gateway.environment.REDIS_URL).toBe("redis://redis:6379");
    expect(gateway.depends_on.redis.condition).toBe("service_healthy");
    expect(gateway.ports).toBeUndefined();
  });

  it("gives a stopping gateway more time than its drain budget", () => {
    expect(durationMs(gateway.stop_grace_period)).toBeGreaterThan(Number(gateway.environment.DRAIN_MS));
  });

  it("publishes port 8080 only through the nginx load balancer with deploy/nginx.conf", () => {
    expect(lb.image).toMatch(/^nginx:/);
    expect(lb.ports.map(String)).toEqual(["0.0.0.0:8080:8080"]);
    expect(lb.volumes).toContain("./deploy/nginx.conf:/etc/nginx/nginx.conf:ro");
    expect(existsSync(join(root, "deploy/nginx.conf"))).toBe(true);
  });

  it("passes dclint with no warning", () => {
    const run = Bun.spawnSync([bin("dclint"), "--max-warnings", "0", "--color", "false", join(root, "compose.yaml")]);
    expect({ exit: run.exitCode, out: run.stdout.toString() }).toMatchObject({ exit: 0 });
  });

  // `docker compose config` parses without an engine, but only where the
  // compose plugin is installed (it is not on our machines).
  const hasComposePlugin = Bun.which("docker") !== null && Bun.spawnSync(["docker", "compose", "version"]).exitCode === 0;
  it.skipIf(!hasComposePlugin)("is accepted by `docker compose config`", () => {
    const run = Bun.spawnSync(["docker", "compose", "-f", join(root, "compose.yaml"), "config", "--quiet"]);
    expect({ exit: run.exitCode, err: run.stderr.toString() }).toMatchObject({ exit: 0 });
  });
});

// ---- deploy/nginx.conf --------------------------------------------------------

const nginxConf = read("deploy/nginx.conf");
const directives = nginxConf.replace(/#.*$/gm, "");
const directive = (name: string) => [...directives.matchAll(new RegExp(`^\\s*${name}\\s+([^;{]+)[;{]`, "gm"))].map((m) => m[1]!.trim());

describe("deploy/nginx.conf", () => {
  it("never buffers, caches or compresses a stream", () => {
    expect(directive("proxy_buffering")).toEqual(["off"]);
    expect(directive("proxy_cache")).toEqual(["off"]);
    expect(directive("gzip")).toEqual(["off"]);
    expect(directive("chunked_transfer_encoding")).toEqual(["on"]);
  });

  it("keeps quiet streams open far longer than the heartbeat interval", () => {
    const [timeout = ""] = directive("proxy_read_timeout");
    expect(durationMs(timeout)).toBeGreaterThanOrEqual(3_600_000);
  });

  it("forwards WebSocket upgrades over HTTP/1.1", () => {
    expect(directive("proxy_http_version")).toEqual(["1.1"]);
    expect(directive("map")).toEqual(["$http_upgrade $connection_upgrade"]);
    expect(directive("proxy_set_header")).toEqual(
      expect.arrayContaining(["Upgrade $http_upgrade", "Connection $connection_upgrade"]),
    );
  });

  it("balances over the compose gateway service", () => {
    expect(directive("server")).toContainEqual(expect.stringMatching(/^gateway:8080\b/));
    expect(directive("proxy_pass")).toEqual(["http://taskstream"]);
  });
});

// Real nginx with this config, its upstream pointed at a stub on loopback
// ("gateway" only resolves inside the compose network).
const nginx = Bun.which("nginx") ?? Bun.which("nginx", { PATH: "/usr/sbin" });
describe.skipIf(nginx === null)("deploy/nginx.conf in a running nginx", () => {
  const work = mkdtempSync(join(tmpdir(), "taskstream-nginx-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  // An upstream that answers with a retry line, sends one SSE frame a moment
  // later (bytes that come with the headers are always passed on at once),
  // then holds the response open; it sends no X-Accel-Buffering, so only the
  // nginx config decides.
  const upstream = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req, server) {
      const path = new URL(req.url).pathname;
      if (path === "/healthz") return Response.json({ status: "ok" });
      if (path === "/echo-forwarded") return Response.json({ forwarded: req.headers.get("x-forwarded-for") });
      if (path === "/api/v1/ws") {
        return server.upgrade(req) ? undefined : new Response("expected websocket", { status: 400 });
      }
      const encode = (text: string) => new TextEncoder().encode(text);
      const body = new ReadableStream({
        start(c) {
          c.enqueue(encode("retry: 1000\n\n"));
          setTimeout(() => c.enqueue(encode("id: 1-0\nevent: WorkflowStarted\ndata: {}\n\n")), 100);
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    },
    websocket: { message: (ws, msg) => void ws.send(`echo:${msg}`) },
  });
  afterAll(() => upstream.stop(true));

  const freePort = () => {
    const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    const port = probe.port!;
    probe.stop(true);
    return port;
  };

  /** Starts nginx with deploy/nginx.conf (upstream and listen port swapped); returns its base URL. */
  const startNginx = async (config: string) => {
    const port = freePort();
    const file = join(work, `nginx-${port}.conf`);
    const accessLog = join(work, `access-${port}.log`);
    await Bun.write(
      file,
      config
        .replace(/server gateway:8080/, `server 127.0.0.1:${upstream.port}`)
        .replace(/listen 8080;/, `listen 127.0.0.1:${port};`)
        .replace("/var/log/nginx/access.log", accessLog),
    );
    const args = ["-p", work, "-e", "stderr", "-c", file, "-g", `daemon off; pid ${work}/nginx-${port}.pid;`];
    const check = Bun.spawnSync([nginx!, "-t", ...args]);
    expect({ exit: check.exitCode, err: check.stderr.toString() }).toMatchObject({ exit: 0 });
    const proc = Bun.spawn([nginx!, ...args], { stdout: "ignore", stderr: "pipe" });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      if (await fetch(`${base}/healthz`).then(() => true, () => false)) break;
      await Bun.sleep(50);
    }
    return { base, accessLog: () => (existsSync(accessLog) ? readFileSync(accessLog, "utf8") : ""), [Symbol.asyncDispose]: async () => { proc.kill("SIGTERM"); await proc.exited; } };
  };

  /** The SSE text received through nginx within `ms`, while the stream is still open. */
  const receivedWithin = async (base: string, ms: number) => {
    const signal = AbortSignal.timeout(ms);
    let text = "";
    try {
      const res = await fetch(`${base}/api/v1/agents/a/tasks/t/events/stream`, { signal });
      for await (const chunk of res.body!) text += new TextDecoder().decode(chunk);
    } catch (error) {
      if (!signal.aborted) throw error;
    }
    return text;
  };

  it("delivers an SSE frame at once while the response stays open", async () => {
    await using lb = await startNginx(nginxConf);
    expect(await receivedWithin(lb.base, 1000)).toContain("event: WorkflowStarted");
  });

  // Buffering alone did not hold a frame back in nginx 1.22; with gzip too it
  // holds even the headers. This proves the check above can fail.
  it("would hold the frame back with buffering and gzip on", async () => {
    const unsafe = nginxConf
      .replace("proxy_buffering off;", "proxy_buffering on;")
      .replace("gzip off;", "gzip on; gzip_types text/event-stream;");
    await using lb = await startNginx(unsafe);
    expect(await receivedWithin(lb.base, 1000)).not.toContain("event: WorkflowStarted");
  });

  // The attack: a client writes its own X-Forwarded-For to escape per-address limits.
  it("overwrites a client's X-Forwarded-For with the address nginx saw", async () => {
    await using lb = await startNginx(nginxConf);
    const response = await fetch(`${lb.base}/echo-forwarded`, { headers: { "x-forwarded-for": "203.0.113.7" } });
    expect(await response.json()).toEqual({ forwarded: "127.0.0.1" });
  });

  it("keeps access_token out of the access log", async () => {
    await using lb = await startNginx(nginxConf);
    await fetch(`${lb.base}/healthz?access_token=secret-token-value`);
    for (let i = 0; i < 100 && !lb.accessLog().includes("/healthz"); i++) await Bun.sleep(20);
    expect(lb.accessLog()).toContain("GET /healthz");
    expect(lb.accessLog()).not.toContain("secret-token-value");
  });

  it("proxies a WebSocket on /api/v1/ws", async () => {
    await using lb = await startNginx(nginxConf);
    const ws = new WebSocket(`${lb.base.replace("http", "ws")}/api/v1/ws`);
    const reply = await new Promise<string>((ok, fail) => {
      ws.onopen = () => ws.send('{"op":"ping"}');
      ws.onmessage = (e) => ok(String(e.data));
      ws.onerror = () => fail(new Error("websocket through nginx failed"));
    });
    ws.close();
    expect(reply).toBe('echo:{"op":"ping"}');
  });
});

// ---- linters (devDependencies) ---------------------------------------------------

function bin(name: string): string {
  const path = join(root, "node_modules/.bin", name);
  if (!existsSync(path)) throw new Error(`${name} is not installed: it is a devDependency, run npm install`);
  return path;
}
