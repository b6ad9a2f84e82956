#!/usr/bin/env node
/*
 * run.mjs - the web pages in a real headless browser (ctest browser/handoff).
 *
 * Starts a whole mesh from MESH_BIN_DIR (redis-server on a free port, one
 * router, memory, tools, llm with the rules backend, the gateway serving
 * MESH_SOURCE_DIR/web with a people key), then drives Debian's chromium
 * (CHROMIUM, default /usr/bin/chromium) with playwright-core:
 *
 *   1. web chat: send a message, see the answer stream in (delta events);
 *   2. handoff: the customer asks for a person (claims_intake hands over),
 *      the console shows it in the live queue, a person claims it and
 *      replies, the reply arrives in the web chat; the customer writes
 *      while the person holds it (the bot stays silent, the console shows
 *      the message); the person releases and the bot answers again.
 *
 * Screenshots go to MESH_SCREENSHOT_DIR (default ./browser-screenshots).
 * Exit 0 = passed, 1 = failed, 77 = skipped (node_modules or chromium
 * missing: `npm ci` here, `apt-get install chromium`).
 * Every process started is killed on exit (also on failure and signals).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync } from "node:fs";
import { createServer, createConnection } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const HERE = dirname(fileURLToPath(import.meta.url));
const SRC = resolve(process.env.MESH_SOURCE_DIR || join(HERE, "..", ".."));
const BIN = resolve(process.env.MESH_BIN_DIR || join(SRC, "build", "bin"));
const DATA = resolve(process.env.MESH_DATA_DIR || join(SRC, "data"));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = resolve(process.env.MESH_SCREENSHOT_DIR || "browser-screenshots");
const KEY = "browser-test-key-0123456789abcdef";
const READY_MS = 30000;
const STEP_MS = 15000;

const SKIP = 77;
if (!existsSync(join(HERE, "node_modules", "playwright-core"))) {
  console.log("SKIP: tests/browser/node_modules missing (run `npm ci` in tests/browser)");
  process.exit(SKIP);
}
if (!existsSync(CHROMIUM)) {
  console.log(`SKIP: ${CHROMIUM} missing (apt-get install chromium)`);
  process.exit(SKIP);
}
for (const svc of ["router", "memory", "tools", "llm", "gateway"]) {
  if (!existsSync(join(BIN, `mesh-${svc}`))) {
    console.error(`FAIL: ${join(BIN, `mesh-${svc}`)} missing (build the services; MESH_BIN_DIR)`);
    process.exit(1);
  }
}
const { chromium } = await import("playwright-core");

const procs = [];
let logDir = null;

function log(msg) {
  console.log(`[browser] ${msg}`);
}

/* Signal one started process by its own pid (never a group, never pid 0). */
function signal(p, sig) {
  if (!Number.isInteger(p.pid) || p.pid <= 0 || p.exitCode !== null || p.signalCode !== null) return false;
  try {
    process.kill(p.pid, sig);
    return true;
  } catch (e) {
    return false; /* already gone */
  }
}

function killAll() {
  for (const p of procs) signal(p, "SIGKILL");
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAll();
    process.exit(1);
  });
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function start(name, cmd, args, env) {
  const out = openSync(join(logDir, `${name}.log`), "w");
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MESH_")));
  const p = spawn(cmd, args, { env: { ...clean, ...env }, stdio: ["ignore", out, out] });
  p.meshName = name;
  p.on("error", (e) => log(`${name}: cannot start ${cmd}: ${e.code || e}`));
  procs.push(p);
  return p;
}

async function until(what, fn, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch (e) {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function redisPing(port) {
  return new Promise((res) => {
    const c = createConnection({ port, host: "127.0.0.1" }, () => c.write("PING\r\n"));
    c.on("data", (d) => {
      res(d.toString().startsWith("+PONG"));
      c.destroy();
    });
    c.on("error", () => res(false));
  });
}

async function startMesh() {
  logDir = join(SHOTS, "logs");
  mkdirSync(logDir, { recursive: true });
  const [redis, fe, be, http] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  start("redis", "redis-server", ["--port", String(redis), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"], {});
  await until("redis", () => redisPing(redis), READY_MS);
  const common = {
    MESH_DATA_DIR: DATA,
    MESH_HEARTBEAT_MS: "100",
    MESH_HEARTBEAT_LIVENESS: "3",
    MESH_RECONNECT_MIN_MS: "50",
    MESH_RECONNECT_MAX_MS: "500",
    MESH_DRAIN_MS: "2000",
    MESH_LOG_LEVEL: "info",
  };
  const backends = `tcp://127.0.0.1:${be}`;
  start("router", join(BIN, "mesh-router"), [], {
    ...common,
    MESH_FRONTEND_BIND: `tcp://127.0.0.1:${fe}`,
    MESH_BACKEND_BIND: backends,
  });
  start("memory", join(BIN, "mesh-memory"), [], {
    ...common,
    MESH_ROUTER_BACKENDS: backends,
    MESH_REDIS_HOST: "127.0.0.1",
    MESH_REDIS_PORT: String(redis),
  });
  start("tools", join(BIN, "mesh-tools"), [], { ...common, MESH_ROUTER_BACKENDS: backends });
  start("llm", join(BIN, "mesh-llm"), [], { ...common, MESH_ROUTER_BACKENDS: backends });
  start("gateway", join(BIN, "mesh-gateway"), [], {
    ...common,
    MESH_ROUTER_FRONTENDS: `tcp://127.0.0.1:${fe}`,
    MESH_HTTP_HOST: "127.0.0.1",
    MESH_HTTP_PORT: String(http),
    MESH_WEB_DIR: join(SRC, "web"),
    MESH_PEOPLE_KEYS: `mei:${KEY}`,
  });
  const base = `http://127.0.0.1:${http}`;
  await until("the mesh (/readyz 200)", async () => (await fetch(`${base}/readyz`)).status === 200, READY_MS);
  /* Ready also means the workers answer: one throwaway turn. */
  await until(
    "a first turn",
    async () => {
      const r = await fetch(`${base}/v1/conversations/warmup/messages`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: "hello" }),
      });
      return r.status === 200;
    },
    READY_MS,
  );
  return base;
}

/*
 * Stop the mesh the way an orchestrator does: SIGTERM the gateway, then the
 * workers, then the router, then redis, each waited for (bounded). Returns
 * the names of the services that did not exit 0 (a crash, or a sanitizer
 * report at shutdown, fails the test).
 */
async function stopMesh() {
  const bad = procs
    .filter((p) => p.meshName !== "redis" && (p.signalCode !== null || (p.exitCode !== null && p.exitCode !== 0)))
    .map((p) => `${p.meshName} (died: exit ${p.exitCode ?? p.signalCode})`);
  const tiers = [["gateway"], ["llm", "tools", "memory"], ["router"], ["redis"]];
  for (const tier of tiers) {
    const ps = procs.filter((p) => tier.includes(p.meshName) && Number.isInteger(p.pid) && p.exitCode === null && p.signalCode === null);
    await Promise.all(
      ps.map(
        (p) =>
          new Promise((res) => {
            const t = setTimeout(() => signal(p, "SIGKILL"), 10000);
            p.once("exit", (code, sig) => {
              clearTimeout(t);
              if (code !== 0 && p.meshName !== "redis") bad.push(`${p.meshName} (exit ${code ?? sig})`);
              res();
            });
            if (!signal(p, "SIGTERM")) {
              clearTimeout(t);
              res();
            }
          }),
      ),
    );
  }
  return bad;
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  log(`screenshot ${name}.png`);
}

async function sendChat(page, text) {
  const before = await page.locator("#messages .msg.bot").count();
  await page.fill("#text", text);
  await page.click("#send");
  const bubble = page.locator("#messages .msg.bot").nth(before);
  await bubble.waitFor({ timeout: STEP_MS });
  await page.waitForFunction(
    (i) => {
      const b = document.querySelectorAll("#messages .msg.bot")[i];
      return b && !b.classList.contains("streaming");
    },
    before,
    { timeout: STEP_MS },
  );
  return bubble;
}

async function testStreaming(browser, base) {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  /* The worker list comes from GET /v1/models. */
  await page.waitForFunction(() => document.querySelectorAll("#worker option").length > 1, null, {
    timeout: STEP_MS,
  });
  await page.selectOption("#worker", "policy_qa");
  const bubble = await sendChat(page, "保单 P10023 的状态是什么？");
  const text = await bubble.locator(".text").innerText();
  const deltas = Number((await bubble.getAttribute("data-deltas")) || 0);
  log(`streamed answer (${deltas} delta events): ${text.slice(0, 80)}`);
  assert.ok(deltas >= 1, "the answer arrived as streamed delta events");
  assert.ok(text.includes("P10023"), "the answer is about the policy asked for");
  assert.equal(await bubble.evaluate((b) => b.classList.contains("error")), false);
  await shot(page, "01-chat-streamed");
  await page.close();
}

async function testHandoff(browser, base) {
  const chat = await (await browser.newContext()).newPage();
  await chat.goto(`${base}/`);
  await chat.waitForFunction(() => document.querySelectorAll("#worker option").length > 1, null, {
    timeout: STEP_MS,
  });
  await chat.selectOption("#worker", "claims_intake");
  const conv = (await chat.locator("#conv-id").innerText()).trim();
  assert.ok(conv.startsWith("web-"));

  /* The customer asks for a person: the agent hands over. */
  await sendChat(chat, "I had an accident on Yan'an Road and someone was injured. I want to talk to a human.");
  await chat.locator("#handoff-banner.pending").waitFor({ timeout: STEP_MS });
  await shot(chat, "02-chat-handoff-pending");

  /* The console: sign in, the queue shows it live. */
  const console_ = await (await browser.newContext()).newPage();
  await console_.goto(`${base}/console`);
  await console_.fill("#api-key", "wrong-key-0000000000000000");
  await console_.click("#sign-in");
  await console_.locator("#login-error").filter({ hasText: "refused" }).waitFor({ timeout: STEP_MS });
  await console_.fill("#api-key", KEY);
  await console_.click("#sign-in");
  const item = console_.locator(`#queue li[data-conv="${conv}"]`);
  await item.waitFor({ timeout: STEP_MS });
  assert.match(await item.innerText(), /pending/);
  await item.locator("button").click();
  await console_.locator("#detail-state[data-state=pending]").waitFor({ timeout: STEP_MS });
  /* The worker's collected facts are shown. */
  await console_.locator("#slots dt").first().waitFor({ timeout: STEP_MS });
  await shot(console_, "03-console-queue");

  /* Claim, then the chat says a colleague took over. */
  await console_.click("#claim");
  await console_.locator("#detail-state[data-state=human]").waitFor({ timeout: STEP_MS });
  await chat.locator("#handoff-banner.human").waitFor({ timeout: STEP_MS });

  /* The person's reply arrives in the web chat. */
  const replyText = "Hello, this is Mei from claims. Is everyone safe? I will call you in a minute.";
  await console_.fill("#reply-text", replyText);
  await console_.click("#reply");
  const human = chat.locator("#messages .msg.human", { hasText: "Mei from claims" });
  await human.waitFor({ timeout: STEP_MS });
  await shot(chat, "04-chat-human-reply");

  /* While the person holds it the bot is silent; the person sees the message. */
  const quiet = await sendChat(chat, "Yes, we are fine, my plate is 沪A12345");
  assert.ok(await quiet.evaluate((b) => b.classList.contains("quiet")), "the bot stayed silent");
  await console_
    .locator("#transcript .msg.user", { hasText: "沪A12345" })
    .waitFor({ timeout: STEP_MS });
  await console_.fill("#note-text", "customer safe, called back");
  await console_.click("#note");
  await console_.locator("#transcript .msg.note", { hasText: "called back" }).waitFor({ timeout: STEP_MS });
  await shot(console_, "05-console-claimed");

  /* Release: the chat shows the assistant is back and the bot answers again. */
  await console_.fill("#release-summary", "customer safe; continue the intake");
  await console_.click("#release");
  await console_.locator("#detail-state[data-state=bot]").waitFor({ timeout: STEP_MS });
  await chat.locator("#handoff-banner.bot").waitFor({ timeout: STEP_MS });
  const back = await sendChat(chat, "What else do you need from me?");
  const backText = await back.locator(".text").innerText();
  assert.equal(await back.evaluate((b) => b.classList.contains("quiet")), false, "the bot answers again");
  assert.ok(backText.length > 0);
  /* The note never reached the customer. */
  assert.equal(await chat.locator("#messages", { hasText: "called back" }).count(), 0);
  await shot(chat, "06-chat-bot-again");
}

let failed = false;
let browser = null;
try {
  mkdirSync(SHOTS, { recursive: true });
  const base = await startMesh();
  log(`mesh ready at ${base}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  await testStreaming(browser, base);
  log("PASS chat streaming");
  await testHandoff(browser, base);
  log("PASS handoff");
} catch (e) {
  failed = true;
  console.error(`[browser] FAIL: ${e.stack || e}`);
  if (logDir) console.error(`[browser] service logs in ${logDir}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  const bad = await stopMesh().catch((e) => [String(e)]);
  if (bad.length > 0) {
    failed = true;
    console.error(`[browser] FAIL: did not exit cleanly: ${bad.join(", ")} (logs in ${logDir})`);
  }
  killAll();
}
process.exit(failed ? 1 : 0);
