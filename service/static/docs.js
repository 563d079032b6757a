// The API page (/docs): fetches /openapi.json and renders it as plain HTML. No library, nothing fetched
// from elsewhere, no inline script (the page's Content-Security-Policy forbids it); every text from the
// document goes in as text, never as HTML.
"use strict";

const METHODS = ["get", "post", "put", "patch", "delete"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Text with `code` spans, as nodes. */
function inline(text) {
  return String(text).split(/(`[^`]*`)/).filter(Boolean).map((part) =>
    part.startsWith("`") && part.endsWith("`") && part.length > 1 ? el("code", {}, part.slice(1, -1)) : part,
  );
}

/** A tiny, safe subset of Markdown: paragraphs, "- " lists and `code`. */
function prose(text) {
  const box = el("div", {});
  for (const block of String(text || "").split(/\n\s*\n/)) {
    const lines = block.split("\n");
    const items = lines.filter((line) => line.startsWith("- "));
    const intro = lines.filter((line) => !line.startsWith("- ")).join(" ").trim();
    if (intro) box.append(el("p", {}, inline(intro)));
    if (items.length) box.append(el("ul", {}, items.map((line) => el("li", {}, inline(line.slice(2))))));
  }
  return box;
}

function refName(ref) {
  return ref.split("/").pop();
}

/** A schema described in one line, with links to named schemas. */
function typeOf(schema) {
  if (!schema || Object.keys(schema).length === 0) return ["any"];
  if (schema.$ref) return [el("a", { href: `#schema-${refName(schema.$ref)}` }, refName(schema.$ref))];
  if ("const" in schema) return [el("code", {}, JSON.stringify(schema.const))];
  if (schema.enum) return schema.enum.flatMap((v, i) => [i ? " | " : "", el("code", {}, JSON.stringify(v))]);
  if (schema.anyOf || schema.oneOf) {
    return (schema.anyOf || schema.oneOf).flatMap((s, i) => [i ? " | " : "", ...typeOf(s)]);
  }
  const kinds = Array.isArray(schema.type) ? schema.type : [schema.type || "object"];
  return kinds.flatMap((kind, i) => {
    const sep = i ? " | " : "";
    if (kind === "array") return [sep, "array of ", ...typeOf(schema.items)];
    return [sep, kind];
  });
}

function limits(schema) {
  if (!schema) return "";
  const parts = [];
  for (const [key, label] of [["minLength", "min length"], ["maxLength", "max length"], ["minimum", "min"],
    ["maximum", "max"], ["minItems", "min items"], ["maxItems", "max items"], ["default", "default"]]) {
    if (key in schema) parts.push(`${label} ${JSON.stringify(schema[key])}`);
  }
  return parts.join(", ");
}

function propertiesTable(schema) {
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  if (!Object.keys(props).length) return null;
  return el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "required"),
      el("th", {}, "notes"))),
    el("tbody", {}, Object.entries(props).map(([name, prop]) => el("tr", {},
      el("td", {}, el("code", {}, name)),
      el("td", {}, typeOf(prop)),
      el("td", {}, required.has(name) ? "yes" : "no"),
      el("td", {}, inline([prop.description, limits(prop)].filter(Boolean).join(" "))),
    ))),
  );
}

function content(media) {
  return Object.entries(media || {}).map(([type, body]) => el("div", {},
    el("code", {}, type), ": ", typeOf(body.schema)));
}

function resolve(spec, obj) {
  return obj && obj.$ref ? spec.components.responses[refName(obj.$ref)] : obj;
}

function operation(spec, path, method, op) {
  const id = `op-${op.operationId || method + path}`;
  const box = el("article", { class: "op", id },
    el("h3", { class: "op-head" },
      el("span", { class: `method method-${method}` }, method),
      el("span", { class: "path" }, path),
      el("span", { class: "summary" }, op.summary || "")),
  );
  if (op.description) box.append(el("div", { class: "op-description" }, prose(op.description)));
  if (op.parameters && op.parameters.length) {
    box.append(el("h4", {}, "Parameters"), el("table", {},
      el("tbody", {}, op.parameters.map((p) => el("tr", {},
        el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, typeOf(p.schema)),
        el("td", {}, p.required ? "required" : "optional"))))));
  }
  if (op.requestBody) box.append(el("h4", {}, "Request body"), ...content(op.requestBody.content));
  box.append(el("h4", {}, "Responses"), el("table", {},
    el("tbody", {}, Object.entries(op.responses || {}).map(([status, raw]) => {
      const response = resolve(spec, raw) || {};
      return el("tr", {}, el("td", {}, el("strong", {}, status)),
        el("td", {}, inline(response.description || "")), el("td", {}, content(response.content)));
    }))));
  return box;
}

function render(spec) {
  const info = spec.info || {};
  document.title = `${info.title || "API"} · API`;
  document.getElementById("title").textContent = `${info.title || "API"} API`;
  document.getElementById("version").textContent = `version ${info.version || "?"} · OpenAPI ${spec.openapi}`;
  document.getElementById("description").append(prose(info.description));

  const toc = document.getElementById("toc");
  const ops = document.getElementById("operations");
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const node = operation(spec, path, method, op);
      ops.append(node);
      toc.append(el("li", {}, el("a", { href: `#${node.id}` }, `${method.toUpperCase()} ${path}`)));
    }
  }
  const list = document.getElementById("schema-list");
  for (const [name, schema] of Object.entries((spec.components || {}).schemas || {})) {
    list.append(el("div", { class: "schema", id: `schema-${name}` },
      el("h3", {}, name), schema.description ? prose(schema.description) : null,
      propertiesTable(schema) || el("p", {}, typeOf(schema))));
  }
  document.getElementById("schemas").hidden = false;
  document.getElementById("status").textContent = "";
}

async function main() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`status ${response.status}`);
    render(await response.json());
  } catch (error) {
    status.textContent = `Cannot load /openapi.json (${error.message}).`;
  }
}

main();
