/**
 * The round trip with the generated TypeScript client (`fnkit client typescript`), compiled by
 * tests/test_clients.py with `tsc --strict` beside the generated files and run by Node.
 *
 * A new user signs up with supabase-js against the local Auth; the thin client sends that
 * session to /functions/v1/<name>. It creates a workspace, a project and three tasks (with an
 * Idempotency-Key, sent twice), pages through the tasks with the cursor, gets a typed 422
 * (`loc`) and a typed 412 on a stale If-Match. Prints what it made, as JSON, for cleanup.
 */
import { createClient } from "@supabase/supabase-js";
import { createFunctionsClient, nextCursor, type ErrorEnvelope } from "./client.js";

function fail(message: string, detail?: unknown): never {
  throw new Error(`${message}: ${JSON.stringify(detail)}`);
}

async function main(): Promise<void> {
  const env = (name: string): string => process.env[name] ?? fail(`${name} is not set`);
  const apiKey = env("SUPABASE_KEY");
  const supabase = createClient(env("SUPABASE_URL"), apiKey, {
    auth: { persistSession: false, autoRefreshToken: false },
  });
  const email = `client-${crypto.randomUUID().slice(0, 12)}@example.com`;
  const signedUp = await supabase.auth.signUp({ email, password: "correct-horse-battery" });
  if (signedUp.error || !signedUp.data.session) fail("sign-up", signedUp.error);
  const api = createFunctionsClient(supabase, { functionsUrl: env("FUNCTIONS_URL"), apiKey });

  const ws = await api.POST("/workspaces", {
    body: { name: "TS round trip" },
    params: { header: { "Idempotency-Key": `ws-${crypto.randomUUID()}` } },
  });
  if (!ws.data) fail("create workspace", ws.error);
  const workspace = ws.data.data;
  const pr = await api.POST("/projects", { body: { workspace_id: workspace.id, name: "Typed" } });
  if (!pr.data) fail("create project", pr.error);
  const project = pr.data.data;

  const made: string[] = [];
  for (const n of [0, 1, 2]) {
    const request = {
      body: { project_id: project.id, title: `task ${n}`, priority: n },
      params: { header: { "Idempotency-Key": `task-${n}-${crypto.randomUUID()}` } },
    };
    const first = await api.POST("/tasks", request);
    const again = await api.POST("/tasks", request);
    if (!first.data || !again.data) fail("create task", first.error ?? again.error);
    if (first.data.data.id !== again.data.data.id) fail("the key did not replay");
    if (again.response.headers.get("Idempotent-Replayed") !== "true") fail("no replay header");
    made.push(first.data.data.id);
  }

  const seen: string[] = [];
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await api.GET("/tasks", {
      params: { query: { project_id: project.id, limit: 2, cursor } },
    });
    if (!page.data) fail("list tasks", page.error);
    pages += 1;
    seen.push(...page.data.data.map((task) => task.id));
    cursor = nextCursor(page.data.meta);
  } while (cursor);
  if (JSON.stringify(seen) !== JSON.stringify([...made].reverse()) || pages !== 2) {
    fail("pages", { seen, made, pages });
  }

  const invalid = await api.POST("/tasks", { body: { project_id: project.id, title: "" } });
  const problem: ErrorEnvelope | undefined = invalid.error;
  const loc = problem?.error.details?.[0]?.loc;
  if (invalid.response.status !== 422 || JSON.stringify(loc) !== '["body","title"]') {
    fail("422", invalid.error);
  }

  const path = { params: { path: { id: made[0] }, header: { "If-Match": '"1"' } } };
  const moved = await api.PATCH("/tasks/{id}", { ...path, body: { title: "moved" } });
  if (!moved.data) fail("patch", moved.error);
  const stale = await api.PATCH("/tasks/{id}", { ...path, body: { title: "again" } });
  if (stale.response.status !== 412 || stale.error?.error.code !== "PRECONDITION_FAILED") {
    fail("412", stale.error);
  }
  console.log(JSON.stringify({ workspace: workspace.id, tasks: made, pages, loc, stale: 412 }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
