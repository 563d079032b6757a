// The iss-qa chat page: plain ES2020, no framework, no build step.
// Untrusted text (questions, answers, documents) only ever enters the page as text nodes or attribute
// values, never as HTML, so a document containing markup shows that markup as inert text.
"use strict";

const STORAGE_KEY = "issqa.chat.v1";
const ASK_TIMEOUT_MS = 30000;
const DOCUMENT_TIMEOUT_MS = 15000;
const HISTORY_TURNS = 8; // earlier questions and answers sent along with a follow-up
const KEPT_TURNS = 50; // turns kept in localStorage
const NARROW = window.matchMedia("(max-width: 900px)");
const DATE_FORMAT = new Intl.DateTimeFormat("en-GB", {
  day: "numeric", month: "short", year: "numeric", timeZone: "UTC",
});

const els = {
  topbar: document.querySelector(".topbar"),
  chat: document.getElementById("chat"),
  scroller: document.getElementById("scroller"),
  welcome: document.getElementById("welcome"),
  messages: document.getElementById("messages"),
  conversationTitle: document.getElementById("conversation-title"),
  form: document.getElementById("composer"),
  question: document.getElementById("question"),
  send: document.getElementById("send"),
  newChat: document.getElementById("new-chat"),
  panel: document.getElementById("source-panel"),
  panelKicker: document.getElementById("panel-kicker"),
  panelTitle: document.getElementById("panel-title"),
  panelMeta: document.getElementById("panel-meta"),
  panelBody: document.getElementById("panel-body"),
  panelToggle: document.getElementById("panel-toggle"),
  panelLink: document.getElementById("panel-link"),
  panelClose: document.getElementById("panel-close"),
  announcer: document.getElementById("announcer"),
};

let state = loadState(); // { turns: [{ id, question, history, status, response?, error? }] }
let panel = null; // { turnId, n, mode: "passage" | "document", opener }
const inflight = new Map(); // turn id -> AbortController
const documents = new Map(); // document id -> Promise of GET /api/documents/<id>

// ---------------------------------------------------------------- small helpers

/** Create an element; `text` and children become text nodes, so no data is ever parsed as HTML. */
function h(tag, props = {}, children = []) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "onclick") el.addEventListener("click", value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of [].concat(children)) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

/** A copy of one of the page's own SVG icons (from a <template>, never from data). */
function icon(name) {
  return document.getElementById(`icon-${name}`).content.firstElementChild.cloneNode(true);
}

function newId() {
  return Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
}

function formatDate(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
  if (!match) return value || "";
  return DATE_FORMAT.format(new Date(Date.UTC(+match[1], +match[2] - 1, +match[3])));
}

function formatDuration(ms) {
  return ms < 1000 ? `${Math.max(1, Math.round(ms))} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** "15 Jul 2022 · AFP, dpa · p. 3": the date, publisher and (PDF) page of a citation or document. */
function metaLine(source) {
  const page = Number.isInteger(source.page) ? `p. ${source.page}` : "";
  return [formatDate(source.published), source.source, page].filter(Boolean).join(" · ");
}

/** The URL only if it is a plain web address: a document's `url` must never become `javascript:`. */
function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** Say something to screen readers through the polite live region. */
function announce(message) {
  els.announcer.textContent = "";
  window.setTimeout(() => { els.announcer.textContent = message; }, 60);
}

// ---------------------------------------------------------------- state and storage

function isCitation(c) {
  return c && Number.isInteger(c.n) && typeof c.passage === "string" && typeof c.title === "string"
    && typeof c.document_id === "string" && Number.isInteger(c.start) && Number.isInteger(c.end);
}

function isResponse(r) {
  return r && typeof r.answer === "string" && typeof r.answered === "boolean"
    && Array.isArray(r.citations) && r.citations.every(isCitation);
}

function isTurn(t) {
  return t && typeof t.id === "string" && typeof t.question === "string" && Array.isArray(t.history)
    && ["pending", "done", "error"].includes(t.status) && (t.status !== "done" || isResponse(t.response));
}

function loadState() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    if (saved && Array.isArray(saved.turns)) {
      const turns = saved.turns.filter(isTurn).map((t) => (t.status === "pending"
        ? { ...t, status: "error", error: { message: "The page was reloaded before the answer arrived." } }
        : t));
      return { turns };
    }
  } catch {
    // Unreadable storage: start a fresh conversation.
  }
  return { turns: [] };
}

function saveState() {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ turns: state.turns.slice(-KEPT_TURNS) }));
  } catch {
    // Storage full or disabled: the conversation still works, it just will not survive a reload.
  }
}

function findTurn(id) {
  return state.turns.find((t) => t.id === id);
}

/** The conversation so far as the API's `history`: finished turns only, the most recent few. */
function historyBefore(turns) {
  return turns.filter((t) => t.status === "done").slice(-HISTORY_TURNS).flatMap((t) => [
    { role: "user", content: t.question },
    { role: "assistant", content: t.response.answer },
  ]);
}

// ---------------------------------------------------------------- answers and their markers

/** Split "A. [1] B. [2]" into [{text: "A.", n: 1}, {text: " B.", n: 2}]; a tail without marker has n null. */
function parseAnswer(answer) {
  const parts = [];
  const marker = /\s*\[(\d+)\]/g;
  let last = 0;
  let match;
  while ((match = marker.exec(answer))) {
    parts.push({ text: answer.slice(last, match.index), n: Number(match[1]) });
    last = marker.lastIndex;
  }
  if (last < answer.length) parts.push({ text: answer.slice(last), n: null });
  return parts;
}

function citedNumbers(answer) {
  return new Set(parseAnswer(answer).map((p) => p.n).filter((n) => n !== null));
}

/** The sentences of the answer quoted from citation `n` (each is verbatim in its passage). */
function quotesFor(response, n) {
  return parseAnswer(response.answer).filter((p) => p.n === n).map((p) => p.text.trim()).filter(Boolean);
}

/** Where the quotes occur in `text`, as sorted, non-overlapping [start, end) ranges. */
function quoteRanges(text, quotes) {
  const ranges = quotes.map((q) => [text.indexOf(q), q.length]).filter(([i]) => i >= 0)
    .map(([i, len]) => [i, i + len]).sort((a, b) => a[0] - b[0]);
  return ranges.filter((r, i) => i === 0 || r[0] >= ranges[i - 1][1]);
}

/** Append `text` to `parent`, wrapping each range in a <mark>; returns the first mark. */
function appendHighlighted(parent, text, ranges) {
  let at = 0;
  let first = null;
  for (const [start, end] of ranges) {
    parent.append(text.slice(at, start));
    const mark = h("mark", { text: text.slice(start, end) });
    parent.append(mark);
    first = first || mark;
    at = end;
  }
  parent.append(text.slice(at));
  return first;
}

// ---------------------------------------------------------------- rendering the conversation

function renderAll() {
  els.messages.replaceChildren(...state.turns.map(turnElement));
  updateEmptyState();
}

function renderTurn(turn) {
  const element = turnElement(turn);
  const existing = document.getElementById(`turn-${turn.id}`);
  if (existing) existing.replaceWith(element);
  else els.messages.append(element);
  updateEmptyState();
  syncActiveSource();
}

function updateEmptyState() {
  const empty = state.turns.length === 0;
  els.welcome.hidden = !empty;
  els.messages.hidden = empty;
  els.conversationTitle.hidden = empty;
}

function scrollToEnd() {
  els.scroller.scrollTop = els.scroller.scrollHeight;
}

function turnElement(turn) {
  return h("li", { class: "turn", id: `turn-${turn.id}` }, [
    h("div", { class: "msg msg-user" }, [
      h("h2", { class: "visually-hidden", text: "You asked" }),
      h("p", { class: "bubble", text: turn.question }),
    ]),
    assistantElement(turn),
  ]);
}

function assistantElement(turn) {
  if (turn.status === "pending") return pendingElement();
  if (turn.status === "error") return errorElement(turn);
  return answerElement(turn);
}

function avatar(name) {
  return h("div", { class: "avatar", "aria-hidden": "true" }, icon(name));
}

function pendingElement() {
  return h("div", { class: "msg msg-assistant is-pending", "aria-busy": "true" }, [
    avatar("bot"),
    h("div", { class: "msg-body" }, [
      h("h2", { class: "visually-hidden", text: "iss-qa is answering" }),
      h("p", { class: "working" }, [
        h("span", { class: "dots", "aria-hidden": "true" }, [h("span"), h("span"), h("span")]),
        "Searching the articles…",
      ]),
    ]),
  ]);
}

function errorElement(turn) {
  const { message, detail } = turn.error || {};
  return h("div", { class: "msg msg-assistant is-error", role: "alert" }, [
    avatar("alert"),
    h("div", { class: "msg-body" }, [
      h("h2", { class: "msg-label", text: "No answer this time" }),
      h("p", { class: "error-message", text: message || "Something went wrong." }),
      detail ? h("p", { class: "error-detail", text: detail }) : null,
      h("div", { class: "msg-actions" }, [
        h("button", { type: "button", class: "button", onclick: () => retry(turn.id) }, [
          icon("retry"), h("span", { text: "Retry" }),
        ]),
      ]),
    ]),
  ]);
}

function answerElement(turn) {
  const r = turn.response;
  const classes = r.answered ? "msg msg-assistant" : "msg msg-assistant is-unanswered";
  return h("div", { class: classes }, [
    avatar(r.answered ? "bot" : "info"),
    h("div", { class: "msg-body" }, [
      h("h2", { class: "visually-hidden", text: "iss-qa answered" }),
      r.answered ? null : h("p", { class: "badge" }, [icon("info"), h("span", { text: "The documents may not say this" })]),
      // A name the documents spell another way was read as they spell it: say so, as a search engine would.
      r.read_as ? h("p", { class: "read-as", text: `Read as: ${r.read_as}` }) : null,
      r.answered ? answerText(turn) : closestText(turn),
      sourcesElement(turn),
      h("div", { class: "msg-actions" }, [
        h("button", { type: "button", class: "button button-ghost button-small copy", onclick: (e) => copyTurn(turn, e.currentTarget) }, [
          icon("copy"), h("span", { text: "Copy" }),
        ]),
        typeof r.took_ms === "number" ? h("span", { class: "took", text: formatDuration(r.took_ms) }) : null,
      ]),
    ]),
  ]);
}

/** Below the confidence threshold: never an answer, only where the closest passage is. */
function closestText(turn) {
  const r = turn.response;
  const closest = r.citations[0];
  if (!closest) return h("p", { class: "answer", text: "The documents may not say this, and no passage is close to it." });
  const excerpt = closest.passage.length > 280 ? `${closest.passage.slice(0, 280).trimEnd()}…` : closest.passage;
  return h("div", {}, [
    h("p", { class: "answer" }, [
      "The documents may not say this; the closest passage is\u00a0",
      citeButton(turn, closest),
      ":",
    ]),
    h("blockquote", { class: "closest", text: excerpt }),
  ]);
}

function citeButton(turn, citation) {
  return h("button", {
    type: "button",
    class: "cite",
    "data-turn": turn.id,
    "data-n": citation.n,
    "aria-controls": "source-panel",
    "aria-expanded": "false",
    "aria-label": `Source ${citation.n}: ${citation.title}`,
    text: String(citation.n),
    onclick: (e) => openSource(turn.id, citation.n, e.currentTarget),
  });
}

/** The answer with each [n] marker turned into a button that opens that source. */
function answerText(turn) {
  const r = turn.response;
  const byNumber = new Map(r.citations.map((c) => [c.n, c]));
  const p = h("p", { class: "answer" });
  for (const part of parseAnswer(r.answer)) {
    p.append(part.text);
    if (part.n === null) continue;
    const citation = byNumber.get(part.n);
    if (!citation) {
      p.append(` [${part.n}]`);
      continue;
    }
    p.append("\u00a0"); // a no-break space keeps each marker on the line of its sentence
    p.append(citeButton(turn, citation));
  }
  return p;
}

/** Cards for the cited sources, then the other passages retrieved (folded away). */
function sourcesElement(turn) {
  const r = turn.response;
  if (!r.citations.length) return null;
  const cited = citedNumbers(r.answer);
  const primary = r.answered ? r.citations.filter((c) => cited.has(c.n)) : r.citations.slice(0, 3);
  const rest = r.citations.filter((c) => !primary.includes(c));
  const list = (items) => h("ul", { class: "source-list" }, items.map((c) => h("li", {}, sourceCard(turn, c))));
  const title = r.answered ? (primary.length === 1 ? "Source" : "Sources") : "Nearest passages";
  return h("section", { class: "sources", "aria-label": title }, [
    h("h3", { class: "sources-title", text: title }),
    primary.length ? list(primary) : null,
    rest.length ? h("details", { class: "more-sources" }, [
      h("summary", { text: `${rest.length} more passage${rest.length === 1 ? "" : "s"} retrieved` }),
      list(rest),
    ]) : null,
  ]);
}

function sourceCard(turn, citation) {
  const quote = quotesFor(turn.response, citation.n)[0];
  return h("button", {
    type: "button",
    class: "source-card",
    "data-turn": turn.id,
    "data-n": citation.n,
    "aria-controls": "source-panel",
    "aria-expanded": "false",
    onclick: (e) => openSource(turn.id, citation.n, e.currentTarget),
  }, [
    h("span", { class: "source-top" }, [
      h("span", { class: "chip", "aria-hidden": "true", text: String(citation.n) }),
      h("span", { class: "visually-hidden", text: `Source ${citation.n}: ` }),
      h("span", { class: "source-meta", text: metaLine(citation) || citation.path }),
    ]),
    h("span", { class: "source-title", text: citation.title }),
    h("span", { class: "source-snippet", text: quote || citation.passage }),
  ]);
}

// ---------------------------------------------------------------- asking

function isBusy() {
  return inflight.size > 0;
}

function updateComposer() {
  els.send.disabled = isBusy() || !els.question.value.trim();
  els.form.classList.toggle("is-busy", isBusy());
}

function autosize() {
  els.question.style.height = "auto";
  els.question.style.height = `${Math.min(els.question.scrollHeight, 200)}px`;
}

function ask(text) {
  const question = text.trim();
  if (!question || isBusy()) return false;
  const turn = { id: newId(), question, history: historyBefore(state.turns), status: "pending" };
  state.turns.push(turn);
  saveState();
  renderTurn(turn);
  scrollToEnd();
  send(turn);
  return true;
}

function retry(turnId) {
  const turn = findTurn(turnId);
  if (!turn || isBusy()) return;
  turn.status = "pending";
  delete turn.error;
  saveState();
  renderTurn(turn);
  els.question.focus();
  send(turn);
}

class AskError extends Error {
  constructor(message, detail) {
    super(message);
    this.detail = detail;
  }
}

/** POST the turn's question with its history; the turn ends as "done" or "error", never stuck. */
async function send(turn) {
  const controller = new AbortController();
  inflight.set(turn.id, controller);
  updateComposer();
  announce("Searching the articles…");
  let timedOut = false;
  const timer = window.setTimeout(() => { timedOut = true; controller.abort(); }, ASK_TIMEOUT_MS);
  let outcome;
  try {
    const response = await fetch("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ question: turn.question, history: turn.history }),
      signal: controller.signal,
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw httpError(response, data);
    if (!isResponse(data)) throw new AskError("The server sent a reply this page cannot read.");
    outcome = { status: "done", response: data };
  } catch (err) {
    outcome = { status: "error", error: describeError(err, timedOut) };
  } finally {
    window.clearTimeout(timer);
    inflight.delete(turn.id);
  }
  if (findTurn(turn.id) !== turn) { // the chat was cleared meanwhile
    updateComposer();
    return;
  }
  Object.assign(turn, outcome);
  saveState();
  renderTurn(turn);
  updateComposer();
  scrollToEnd();
  if (turn.status === "done") announce(spokenAnswer(turn.response));
}

function httpError(response, data) {
  const error = data && data.error;
  const message = error && typeof error.message === "string"
    ? error.message
    : `The server answered with an error (HTTP ${response.status}).`;
  const code = error && typeof error.code === "string" ? ` · ${error.code}` : "";
  return new AskError(message, `HTTP ${response.status}${code}`);
}

function describeError(err, timedOut) {
  if (err instanceof AskError) return { message: err.message, detail: err.detail || null };
  if (timedOut) {
    return { message: `The server did not answer within ${ASK_TIMEOUT_MS / 1000} seconds.`, detail: "Timed out" };
  }
  return { message: "Cannot reach the iss-qa server. Check that it is running, then retry.", detail: "Network error" };
}

function spokenAnswer(response) {
  const text = parseAnswer(response.answer).map((p) => p.text.trim()).join(" ");
  const count = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return response.answered
    ? `Answer: ${text} ${count(citedNumbers(response.answer).size, "cited source")}.`
    : `${text} Showing the ${count(response.citations.length, "nearest passage")}.`;
}

function newChat() {
  for (const controller of inflight.values()) controller.abort();
  inflight.clear();
  state = { turns: [] };
  saveState();
  closePanel(false);
  renderAll();
  els.question.value = "";
  autosize();
  updateComposer();
  els.question.focus();
  announce("Started a new chat.");
}

// ---------------------------------------------------------------- copying

/** The answer and its sources as plain text, ready to paste anywhere. */
function plainText(turn) {
  const r = turn.response;
  const cited = citedNumbers(r.answer);
  const sources = r.answered ? r.citations.filter((c) => cited.has(c.n)) : r.citations;
  const lines = [`Question: ${turn.question}`, "", `Answer: ${r.answer}`, "", r.answered ? "Sources:" : "Nearest passages:"];
  for (const c of sources) {
    const meta = metaLine(c);
    const url = safeUrl(c.url);
    lines.push(`[${c.n}] ${c.title}${meta ? ` (${meta})` : ""}`);
    lines.push(`    ${c.path}, characters ${c.start}–${c.end}${url ? ` · ${url}` : ""}`);
    lines.push(`    “${c.passage}”`);
  }
  return lines.join("\n");
}

async function copyTurn(turn, button) {
  const text = plainText(turn);
  let copied = true;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    copied = copyWithSelection(text);
  }
  const label = button.querySelector("span");
  button.replaceChild(icon(copied ? "check" : "copy"), button.querySelector("svg"));
  label.textContent = copied ? "Copied" : "Copy failed";
  announce(copied ? "Answer and sources copied." : "Copying failed.");
  window.setTimeout(() => {
    button.replaceChild(icon("copy"), button.querySelector("svg"));
    label.textContent = "Copy";
  }, 2000);
}

/** Fallback for browsers without the async clipboard API. */
function copyWithSelection(text) {
  const area = h("textarea", { class: "clipboard-helper", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

// ---------------------------------------------------------------- the source panel

function currentCitation() {
  const turn = panel && findTurn(panel.turnId);
  const citation = turn && turn.status === "done" && turn.response.citations.find((c) => c.n === panel.n);
  return citation ? { turn, citation } : null;
}

function openSource(turnId, n, opener) {
  panel = { turnId, n, mode: "passage", opener };
  renderPanel();
  els.panel.hidden = false;
  syncPanelLayout();
  syncActiveSource();
  els.panelTitle.focus();
}

function closePanel(restoreFocus = true) {
  if (!panel) return;
  const { opener } = panel;
  panel = null;
  els.panel.hidden = true;
  syncPanelLayout();
  syncActiveSource();
  if (restoreFocus) (opener && opener.isConnected ? opener : els.question).focus();
}

/** On a narrow screen the panel covers the page, so everything behind it is made inert. */
function syncPanelLayout() {
  const covering = Boolean(panel) && NARROW.matches;
  els.chat.inert = covering;
  els.topbar.inert = covering;
}

function syncActiveSource() {
  for (const el of document.querySelectorAll("[data-turn][data-n]")) {
    const active = Boolean(panel) && el.dataset.turn === panel.turnId && Number(el.dataset.n) === panel.n;
    el.classList.toggle("is-active", active);
    el.setAttribute("aria-expanded", String(active));
  }
}

function renderPanel() {
  const found = currentCitation();
  if (!found) return closePanel(false);
  const { turn, citation } = found;
  const quoted = citedNumbers(turn.response.answer).has(citation.n);
  els.panelKicker.textContent = `Source ${citation.n}${quoted ? "" : " · retrieved, not quoted"}`;
  els.panelTitle.textContent = citation.title;
  els.panelMeta.textContent = [metaLine(citation), citation.path].filter(Boolean).join(" · ");
  const url = safeUrl(citation.url);
  els.panelLink.hidden = !url;
  if (url) els.panelLink.href = url;
  else els.panelLink.removeAttribute("href");
  els.panel.classList.toggle("is-document", panel.mode === "document");
  if (panel.mode === "passage") renderPassage(turn, citation);
  else renderDocument(turn, citation);
}

function renderPassage(turn, citation) {
  els.panelToggle.textContent = "Open document";
  const quotes = quotesFor(turn.response, citation.n);
  const block = h("blockquote", { class: "passage" });
  appendHighlighted(block, citation.passage, quoteRanges(citation.passage, quotes));
  const note = quotes.length
    ? "The highlighted sentence is the one quoted in the answer."
    : "This passage was retrieved for the question but not quoted in the answer.";
  els.panelBody.replaceChildren(
    block,
    h("p", { class: "passage-note", text: `${note} Characters ${citation.start}–${citation.end} of the article.` }),
  );
  els.panelBody.scrollTop = 0;
}

async function renderDocument(turn, citation) {
  els.panelToggle.textContent = "Back to the passage";
  els.panelBody.replaceChildren(h("p", { class: "panel-loading", text: "Loading the article…" }));
  const wanted = panel;
  let doc;
  try {
    doc = await loadDocument(citation.document_id);
  } catch (err) {
    if (panel !== wanted) return;
    els.panelBody.replaceChildren(h("div", { class: "panel-error", role: "alert" }, [
      h("p", { text: err.message }),
      h("button", { type: "button", class: "button", onclick: () => renderPanel() }, [icon("retry"), h("span", { text: "Retry" })]),
    ]));
    return;
  }
  if (panel !== wanted) return; // another source was opened meanwhile
  const article = h("div", { class: "article" });
  const start = passageStart(doc.text, citation);
  let target = null;
  if (start < 0) {
    article.append(doc.text); // the article changed since it was indexed: show it unmarked
  } else {
    const end = start + citation.passage.length;
    const inPassage = h("span", { class: "in-passage", id: "cited-passage" });
    const mark = appendHighlighted(inPassage, citation.passage, quoteRanges(citation.passage, quotesFor(turn.response, citation.n)));
    article.append(doc.text.slice(0, start), inPassage, doc.text.slice(end));
    target = mark || inPassage;
  }
  els.panelBody.replaceChildren(article);
  if (target) centreWithin(els.panelBody, target);
}

/** Scroll `container` (only it, not the page) so that `target` sits in its middle. */
function centreWithin(container, target) {
  const box = container.getBoundingClientRect();
  const item = target.getBoundingClientRect();
  container.scrollTop += item.top - box.top - Math.max(0, (box.height - item.height) / 2);
}

/** Where the cited passage starts in the article: at its offsets, or wherever it now occurs (-1: nowhere). */
function passageStart(text, citation) {
  return text.slice(citation.start, citation.end) === citation.passage
    ? citation.start
    : text.indexOf(citation.passage);
}

function loadDocument(id) {
  if (!documents.has(id)) {
    const request = fetchDocument(id);
    documents.set(id, request);
    request.catch(() => documents.delete(id)); // let a retry fetch it again
  }
  return documents.get(id);
}

async function fetchDocument(id) {
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), DOCUMENT_TIMEOUT_MS);
  try {
    const response = await fetch(`/api/documents/${encodeURIComponent(id)}`, { signal: controller.signal });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw httpError(response, data);
    if (!data || typeof data.text !== "string") throw new Error("The server sent a document this page cannot read.");
    return data;
  } catch (err) {
    if (err instanceof AskError) throw new Error(`Could not open the article: ${err.message}`);
    throw new Error("Could not open the article: the server did not answer.");
  } finally {
    window.clearTimeout(timer);
  }
}

function togglePanelMode() {
  if (!panel) return;
  panel.mode = panel.mode === "passage" ? "document" : "passage";
  renderPanel();
}

// ---------------------------------------------------------------- wiring

function onSubmit(event) {
  event.preventDefault();
  if (ask(els.question.value)) {
    els.question.value = "";
    autosize();
  }
  updateComposer();
}

function onQuestionKey(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    els.form.requestSubmit();
  }
}

function onStarter(event) {
  const button = event.target.closest(".starter");
  if (button) {
    ask(button.textContent);
    els.question.focus();
  }
}

function onKey(event) {
  if (event.key === "Escape" && panel) {
    event.preventDefault();
    closePanel();
  }
}

function start() {
  els.form.addEventListener("submit", onSubmit);
  els.question.addEventListener("keydown", onQuestionKey);
  els.question.addEventListener("input", () => { autosize(); updateComposer(); });
  els.welcome.addEventListener("click", onStarter);
  els.newChat.addEventListener("click", newChat);
  els.panelClose.addEventListener("click", () => closePanel());
  els.panelToggle.addEventListener("click", togglePanelMode);
  document.addEventListener("keydown", onKey);
  NARROW.addEventListener("change", syncPanelLayout);
  window.addEventListener("storage", (event) => {
    if (event.key === STORAGE_KEY && !isBusy()) {
      state = loadState();
      closePanel(false);
      renderAll();
    }
  });
  saveState(); // persists turns interrupted by a reload as errors, so they can be retried
  renderAll();
  updateComposer();
  scrollToEnd();
  document.body.classList.add("is-ready");
}

start();
