// The API reference of `make dev`: renders /docs/openapi.json (every function's document,
// combined) and lets a user try a route with a pasted token. No framework, no CDN: it has to
// work offline. Everything from the documents or a response is set with textContent, never
// as HTML.
"use strict";

const TOKEN_KEY = "fnkit.docs.token";
const SHOWN_HEADERS = ["x-request-id", "ratelimit", "ratelimit-policy", "retry-after", "etag",
  "idempotent-replayed", "location", "www-authenticate", "allow", "server-timing"];
let spec = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

// ---- the token ------------------------------------------------------------------------------

function token() {
  return document.getElementById("token").value.trim().replace(/^Bearer\s+/i, "");
}

function describeToken() {
  const state = document.getElementById("token-state");
  const value = token();
  if (!value) { state.textContent = "no token: public routes only"; return; }
  try {
    const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    const expires = claims.exp ? new Date(claims.exp * 1000) : null;
    const expired = expires && expires < new Date();
    state.textContent = `${claims.role || "?"} ${claims.sub || ""} ${claims.aal || ""}` +
      (expires ? (expired ? " · EXPIRED" : ` · expires ${expires.toLocaleTimeString()}`) : "");
    state.className = expired ? "error" : "muted";
  } catch (err) {
    state.textContent = "not a JWT";
    state.className = "error";
  }
}

function setupToken() {
  const input = document.getElementById("token");
  input.value = localStorage.getItem(TOKEN_KEY) || "";
  input.addEventListener("input", () => {
    localStorage.setItem(TOKEN_KEY, token());
    describeToken();
  });
  document.getElementById("token-toggle").addEventListener("click", (event) => {
    input.type = input.type === "password" ? "text" : "password";
    event.target.textContent = input.type === "password" ? "show" : "hide";
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    input.value = "";
    localStorage.removeItem(TOKEN_KEY);
    describeToken();
  });
  describeToken();
}

// ---- schemas and examples -------------------------------------------------------------------

function resolve(schema) {
  let guard = 0;
  while (schema && schema.$ref && guard++ < 20) {
    const name = schema.$ref.replace("#/components/schemas/", "");
    schema = (spec.components.schemas || {})[name] || {};
  }
  return schema || {};
}

function example(schema, depth = 0) {
  schema = resolve(schema);
  if (depth > 6) return null;
  if ("default" in schema) return schema.default;
  if ("const" in schema) return schema.const;
  if (schema.examples && schema.examples.length) return schema.examples[0];
  if (schema.enum && schema.enum.length) return schema.enum[0];
  const options = schema.anyOf || schema.oneOf;
  if (options) {
    const first = options.find((s) => resolve(s).type !== "null") || options[0];
    return example(first, depth + 1);
  }
  if (schema.allOf) return example(schema.allOf[0], depth + 1);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "object": {
      const out = {};
      const required = new Set(schema.required || []);
      for (const [name, prop] of Object.entries(schema.properties || {})) {
        if (required.has(name) || depth === 0) out[name] = example(prop, depth + 1);
      }
      return out;
    }
    case "array": return schema.items ? [example(schema.items, depth + 1)] : [];
    case "integer": return schema.minimum ?? 1;
    case "number": return schema.minimum ?? 1;
    case "boolean": return false;
    case "string":
      if (schema.format === "uuid") return "00000000-0000-0000-0000-000000000000";
      if (schema.format === "date-time") return new Date().toISOString();
      if (schema.format === "date") return new Date().toISOString().slice(0, 10);
      if (schema.format === "email") return "someone@example.com";
      return "string";
    default: return null;
  }
}

function typeLabel(schema) {
  schema = resolve(schema);
  const options = schema.anyOf || schema.oneOf;
  if (options) return options.map(typeLabel).join(" | ");
  if (schema.type === "array") return `${typeLabel(schema.items || {})}[]`;
  if (schema.enum) return schema.enum.join(" | ");
  const base = Array.isArray(schema.type) ? schema.type.join(" | ") : (schema.type || "any");
  return schema.format ? `${base} (${schema.format})` : base;
}

// ---- rendering ------------------------------------------------------------------------------

function operations() {
  const byFunction = new Map((spec.tags || []).map((tag) => [tag.name, []]));
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const name = (op.tags || [path.split("/")[1]])[0];
      if (!byFunction.has(name)) byFunction.set(name, []);
      byFunction.get(name).push({ path, method, op });
    }
  }
  return byFunction;
}

function renderParams(op) {
  const params = op.parameters || [];
  if (!params.length) return null;
  return el("div", {},
    el("h4", { text: "Parameters" }),
    el("div", { class: "params" }, params.map((p) => [
      el("label", { title: `${p.in}: ${typeLabel(p.schema || {})}` },
        `${p.name} `, el("span", { class: "muted", text: `(${p.in})` }),
        p.required ? el("span", { class: "req", text: " *" }) : null),
      el("input", {
        "data-param": p.name, "data-in": p.in,
        placeholder: typeLabel(p.schema || {}),
      }),
    ])));
}

function renderOperation(fn, { path, method, op }) {
  const body = op.requestBody && op.requestBody.content["application/json"];
  const successCode = Object.keys(op.responses || {}).find((code) => code < "400") || "200";
  const rate = op["x-rate-limit"];
  const details = el("details", {
    class: "op", "data-function": fn, "data-method": method, "data-path": path,
    "data-operation": op.operationId || `${method} ${path}`,
  });
  details.append(
    el("summary", {},
      el("span", { class: `method ${method}`, text: method }),
      el("span", { class: "path", text: path }),
      el("span", { class: "summary", text: op.summary || "" }),
      el("span", { class: "badge", title: machineKind(op)
        ? "a machine caller: Send adds the credentials Supabase would, signed by the dev server"
        : "auth level", text: op["x-auth"] || "user" }),
      rate ? el("span", { class: "badge", title: `rate policy ${rate.policy}`,
        text: `${rate.limit}/${rate.window}s` }) : null),
  );
  const inner = el("div", { class: "op-body" });
  if (op.description) inner.append(el("p", { class: "muted", text: op.description }));
  const params = renderParams(op);
  if (params) inner.append(params);
  let textarea = null;
  if (body) {
    textarea = el("textarea", { class: "body", spellcheck: false });
    textarea.value = JSON.stringify(example(body.schema), null, 2);
    inner.append(el("h4", { text: "Body (JSON)" }), textarea);
  }
  const success = op.responses && op.responses[successCode];
  const answer = success && success.content && success.content["application/json"] &&
    resolve(success.content["application/json"].schema);  // a named envelope is a $ref
  const dataSchema = answer && answer.properties && answer.properties.data;
  if (dataSchema && Object.keys(dataSchema).length) {
    inner.append(el("h4", { text: `Answers ${successCode} with data` }),
      el("pre", { class: "schema", text: JSON.stringify(example(dataSchema), null, 2) }));
  }
  const result = el("div", { class: "result" });
  inner.append(
    el("button", { type: "button", class: "send", text: "Send",
      onclick: () => send(path, method, op, inner, textarea, result) }),
    result);
  details.append(inner);
  return details;
}

const METHOD_ORDER = ["get", "post", "put", "patch", "delete"];

function sortKey({ path, method }) {
  // The function's routes by path, GET before writes; its own openapi.json last.
  const last = path.endsWith("/openapi.json") ? "1" : "0";
  return `${last} ${path} ${METHOD_ORDER.indexOf(method)}`;
}

function render() {
  const nav = document.getElementById("functions");
  const main = document.getElementById("content");
  nav.replaceChildren();
  main.replaceChildren();
  const groups = operations();
  const tags = new Map((spec.tags || []).map((t) => [t.name, t]));
  for (const [fn, ops] of groups) {
    const tag = tags.get(fn) || { name: fn };
    nav.append(el("a", { href: `#fn-${fn}`, "data-function-link": fn },
      fn, el("span", { class: "count", text: String(ops.length) })));
    const section = el("section", { class: "function", id: `fn-${fn}`, "data-function": fn },
      el("h2", {}, tag["x-displayName"] || fn, " ",
        el("code", { text: `/functions/v1/${fn}` })),
      tag.description ? el("p", { class: spec["x-errors"] && spec["x-errors"][fn] ? "error" : "muted",
        text: tag.description }) : null,
      tag["x-openapi"] ? el("p", { class: "muted" }, "Document: ",
        el("a", { href: tag["x-openapi"], text: tag["x-openapi"] })) : null);
    ops.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
    for (const op of ops) section.append(renderOperation(fn, op));
    main.append(section);
  }
  document.body.setAttribute("data-ready", "true");
  if (location.hash) {
    const target = document.getElementById(location.hash.slice(1));
    if (target) target.scrollIntoView();
  }
}

// ---- trying a route -------------------------------------------------------------------------

// Which machine caller a route admits, from its security scheme: "standard-webhooks" (an
// Auth hook), "database-webhook" (a bearer secret that is not a user's JWT), or null.
function machineKind(op) {
  const schemes = (spec.components && spec.components.securitySchemes) || {};
  for (const requirement of op.security || []) {
    for (const name of Object.keys(requirement)) {
      const scheme = schemes[name] || {};
      if (scheme["x-standard-webhooks"]) return "standard-webhooks";
      if (scheme.scheme === "bearer" && scheme.bearerFormat !== "JWT") return "database-webhook";
    }
  }
  return null;
}

// The headers Supabase would send with this exact body, made by the dev server with the
// local development secrets (POST /docs/sign; fnkit/docs_signing.py says why not here).
async function machineHeaders(kind, body) {
  const response = await fetch("/docs/sign", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ kind, body }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `/docs/sign answered ${response.status}`);
  return answer.headers;
}

async function send(path, method, op, scope, textarea, result) {
  let url = path;
  const query = new URLSearchParams();
  const headers = { Accept: "application/json" };
  for (const input of scope.querySelectorAll("input[data-param]")) {
    const name = input.dataset.param;
    const value = input.value.trim();
    if (input.dataset.in === "path") {
      url = url.replace(`{${name}}`, encodeURIComponent(value));
    } else if (value && input.dataset.in === "query") {
      query.append(name, value);
    } else if (value && input.dataset.in === "header") {
      headers[name] = value;
    }
  }
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const init = { method: method.toUpperCase(), headers };
  if (textarea) {
    headers["Content-Type"] = "application/json";
    init.body = textarea.value;
  }
  const kind = machineKind(op);
  if (kind) {
    delete headers.Authorization;  // Supabase sends its own credentials, not a user's token
    try {
      Object.assign(headers, await machineHeaders(kind, init.body || ""));
    } catch (err) {
      result.replaceChildren(el("p", { class: "error", "data-status": "signing",
        text: `Could not sign the call: ${err}` }));
      return;
    }
  }
  const base = (spec.servers && spec.servers[0] && spec.servers[0].url) || "";
  const target = base + url + (query.toString() ? `?${query}` : "");
  result.replaceChildren(el("p", { class: "muted", text: `${init.method} ${target} …` }));
  const started = performance.now();
  try {
    const response = await fetch(target, init);
    const text = await response.text();
    let pretty = text;
    try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch (err) { /* not JSON */ }
    const shown = SHOWN_HEADERS.filter((h) => response.headers.has(h))
      .map((h) => `${h}: ${response.headers.get(h)}`).join("\n");
    result.replaceChildren(
      el("div", { class: `result-status ${response.ok ? "ok" : "fail"}`, "data-status": response.status,
        text: `${response.status} ${response.statusText} · ${Math.round(performance.now() - started)} ms` }),
      el("div", { class: "muted", text: `${init.method} ${target}` }),
      shown ? el("pre", { class: "headers", text: shown }) : null,
      el("pre", { class: "envelope", text: pretty || "(empty body)" }));
  } catch (err) {
    result.replaceChildren(el("p", { class: "error", "data-status": "network",
      text: `Request failed: ${err}` }));
  }
}

// ---- start ----------------------------------------------------------------------------------

async function main() {
  setupToken();
  const status = document.getElementById("status");
  try {
    const response = await fetch("/docs/openapi.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`/docs/openapi.json answered ${response.status}`);
    spec = await response.json();
    render();
  } catch (err) {
    status.textContent = `Could not load the API document: ${err}`;
    status.className = "error";
  }
}

main();
