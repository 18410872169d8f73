// The local host's orchestrations dashboard: a page over the management API, nothing more.
// The system key comes from the page's own ?code= and goes on each call as x-functions-key.
"use strict";

const BASE = "/runtime/webhooks/durabletask";
const KEY = new URLSearchParams(location.search).get("code") || "";
const PAGE = 20;
const MAX_READS = 20;
// `applied`: the filters of the last Apply (the refresh never reads half-typed input);
// `listed`: a number per list read, so that a late answer never overwrites a newer one;
// `busy`: refreshes in flight (the periodic one waits for them rather than cut them short)
const state = { token: "", next: "", open: null, applied: null, listed: 0, busy: 0 };
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = { "x-functions-key": KEY, ...(options.headers || {}) };
  const signal = AbortSignal.timeout(15000);  // a refresh that never ends would hold the next
  const response = await fetch(BASE + path, { ...options, headers, signal });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  return { status: response.status, headers: response.headers, body };
}

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content); else td.textContent = content ?? "";
  row.append(td);
}

function progressOf(custom) {
  if (!custom || typeof custom !== "object" || !Number.isInteger(custom.total)) return null;
  return { done: Number.isInteger(custom.done) ? custom.done : 0, total: custom.total };
}

function progressView(custom) {
  const progress = progressOf(custom);
  const span = document.createElement("span");
  if (!progress) return span;
  const bar = document.createElement("progress");
  bar.max = progress.total; bar.value = progress.done;
  span.append(bar, ` ${progress.done} / ${progress.total}`);
  span.className = "progress";
  return span;
}

function shown(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function filters() {
  const form = new FormData($("filters"));
  const query = new URLSearchParams({ top: String(PAGE) });
  for (const name of ["runtimeStatus", "instanceIdPrefix"]) {
    if (form.get(name)) query.set(name, form.get(name));
  }
  for (const name of ["createdTimeFrom", "createdTimeTo"]) {
    if (form.get(name)) query.set(name, `${form.get(name)}:00Z`);  // read as UTC
  }
  return { query, name: String(form.get("name") || "").toLowerCase() };
}

async function loadList() {
  // the API filters by status, id prefix and time; the name is filtered here, reading on
  // (at most MAX_READS pages) until a page's worth of matches is found
  const { query, name } = state.applied;
  const listing = ++state.listed;
  const rows = [];
  let token = state.token;
  for (let read = 0; read < MAX_READS; read++) {
    const headers = token ? { "x-ms-continuation-token": token } : {};
    const answer = await api(`/instances?${query}`, { headers });
    if (listing !== state.listed) return;  // a newer list (new filters, a page) was asked for
    if (answer.status !== 200) { $("count").textContent = `error ${answer.status}`; return; }
    rows.push(...answer.body.filter((i) => !name || i.name.toLowerCase().includes(name)));
    token = answer.headers.get("x-ms-continuation-token") || "";
    if (!token || rows.length >= PAGE) break;
  }
  state.next = token;
  const body = $("rows");
  body.replaceChildren();
  for (const instance of rows) {
    const row = document.createElement("tr");
    row.dataset.id = instance.instanceId;
    if (instance.instanceId === state.open) row.className = "open";
    cell(row, instance.name);
    const id = document.createElement("code"); id.textContent = instance.instanceId;
    cell(row, id);
    const status = document.createElement("span");
    status.className = `status ${instance.runtimeStatus}`;
    status.textContent = instance.runtimeStatus;
    cell(row, status);
    cell(row, progressView(instance.customStatus));
    cell(row, progressOf(instance.customStatus) ? "" : shown(instance.customStatus));
    cell(row, instance.createdTime);
    cell(row, instance.lastUpdatedTime);
    row.addEventListener("click", () => openDetail(instance.instanceId));
    body.append(row);
  }
  $("count").textContent = `${rows.length} shown`;
  $("next").disabled = !state.next;
}

function timeline(events) {
  const list = $("timeline");
  list.replaceChildren();
  for (const event of events || []) {
    const item = document.createElement("li");
    const when = document.createElement("span");
    when.className = "when";
    when.textContent = (event.Timestamp || "").replace("T", " ").slice(0, 23);
    const what = event.FunctionName || event.Name || "";
    item.append(when, ` ${event.EventType}${what ? " · " + what : ""}`);
    if (event.ScheduledTime) {
      const took = Date.parse(event.Timestamp) - Date.parse(event.ScheduledTime);
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.min(300, Math.max(2, took / 10))}px`;
      bar.title = `${took} ms`;
      item.append(bar, ` ${took} ms`);
    }
    if (event.Reason) item.append(` (${event.Reason})`);
    list.append(item);
  }
}

async function openDetail(instanceId) {
  state.open = instanceId;
  const path = `/instances/${encodeURIComponent(instanceId)}?showHistory=true&showHistoryOutput=true`;
  const answer = await api(path);
  if (state.open !== instanceId) return;  // another job was opened meanwhile
  if (answer.status === 404) { closeDetail(); return; }
  const instance = answer.body;
  $("detail").hidden = false;
  $("d-name").textContent = instance.name;
  $("d-id").textContent = instance.instanceId;
  $("d-status").textContent = instance.runtimeStatus;
  $("d-status").className = `status ${instance.runtimeStatus}`;
  const progress = progressOf(instance.customStatus);
  $("d-progress").textContent = progress ? `Progress: ${progress.done} / ${progress.total}` : "";
  $("d-custom").textContent = shown(instance.customStatus);
  $("d-input").textContent = shown(instance.input);
  $("d-output").textContent = shown(instance.output);
  timeline(instance.historyEvents);
  for (const row of $("rows").children) row.classList.toggle("open", row.dataset.id === instanceId);
}

function closeDetail() {
  state.open = null;
  $("detail").hidden = true;
}

async function act(action) {
  const id = encodeURIComponent(state.open);
  let answer;
  if (action === "purge") {
    answer = await api(`/instances/${id}`, { method: "DELETE" });
  } else if (action === "raiseEvent") {
    const name = encodeURIComponent($("event-name").value || "event");
    answer = await api(`/instances/${id}/raiseEvent/${name}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: $("event-data").value || "null",
    });
  } else {
    answer = await api(`/instances/${id}/${action}?reason=dashboard`, { method: "POST" });
  }
  const ok = answer.status < 300;
  $("d-message").textContent = ok ? `${action}: accepted` : `${action}: ${answer.status} ${shown(answer.body)}`;
  if (action === "purge" && ok) closeDetail();
  await refresh();
}

async function refresh() {
  state.busy++;
  try {
    await loadList();
    if (state.open) await openDetail(state.open);
  } finally {
    state.busy--;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  state.applied = filters();  // what the form holds when the page opens
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.applied = filters();
    state.token = "";
    refresh();
  });
  $("next").addEventListener("click", () => { state.token = state.next; refresh(); });
  $("first").addEventListener("click", () => { state.token = ""; refresh(); });
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
  refresh();
  setInterval(() => { if (!state.busy) refresh(); }, 2000);
});
