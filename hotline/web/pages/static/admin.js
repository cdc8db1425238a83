/* Hotline web admin: one metadata-driven UI for every configuration resource, plus users, API keys, media
 * uploads and the audit log.
 *
 * Built on the page framework (static/hotline.js): the server renders a frame (templates/admin/app.html) and
 * puts in Hotline.page.admin the view, the resource, the key and whether the caller may write; Hotline.api
 * carries the session's CSRF token; Hotline.t translates (catalogs i18n/<lang>/admin.json).  Everything
 * else comes from the REST API: GET /api/v1/config describes every resource and its fields, and the list
 * pages and forms are generated from that description, so a new resource or field needs no change here.
 * Users and API keys are described in the same shape below (accountResources) and use the same code.
 *
 * Invariants:
 * - every visible string goes through t() (English and Russian catalogues, hotline/web/pages/i18n);
 * - the server is the authority on values: client-side checks only give early hints, and the server's
 *   field-named errors (422 {"error": {"field": ...}}) are shown next to the field they name;
 * - nothing is deleted without a confirmation (Hotline.ask, a modal in the page).
 */
(() => {
  "use strict";

  const root = document.getElementById("admin-app");
  const i18nNode = document.getElementById("hotline-i18n");
  if (!root || !i18nNode || !window.Hotline) return;
  const PAGE = Hotline.page;
  const DATA = Object.assign({ lang: PAGE.lang, csrf_token: PAGE.csrf }, PAGE.admin || {});
  const S = JSON.parse(i18nNode.textContent); // to know which keys exist (Hotline.t falls back to the key)
  const CAN_WRITE = Boolean(DATA.can_write);
  const PAGE_SIZE = 25;

  // ------------------------------------------------------------------------------------------ text
  const t = Hotline.t;
  const el = Hotline.el;
  function has(key) {
    return Object.prototype.hasOwnProperty.call(S, key);
  }
  function humanize(name) {
    const s = String(name).replace(/_/g, " ");
    return s.charAt(0).toUpperCase() + s.slice(1);
  }
  function fieldLabel(resource, name) {
    for (const k of ["admin.field." + resource + "." + name, "admin.field." + name]) if (has(k)) return t(k);
    return humanize(name);
  }
  function fieldHint(resource, f) {
    if (f.read_only) return "";
    const k = "admin.hint." + resource + "." + f.name;
    if (has(k)) return t(k);
    return DATA.lang === "en" ? f.description || "" : "";
  }
  function resourceTitle(name, fallback) {
    return has("admin.resource." + name) ? t("admin.resource." + name) : fallback || humanize(name);
  }
  function resourceOne(name, fallback) {
    return has("admin.one." + name) ? t("admin.one." + name) : fallback || humanize(name);
  }
  function capital(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  function choiceLabel(f, value) {
    if (value === "") return t("admin.choice_none");
    const k = "admin.choice." + f.name + "." + String(value).toLowerCase().replace(/[^a-z0-9_]/g, "_");
    return has(k) ? t(k) : value;
  }

  // ------------------------------------------------------------------------------------------ DOM
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }
  function formatValue(f, v) {
    if (v === null || v === undefined || v === "") return "";
    if (f && f.type === "bool") return v ? t("admin.yes") : t("admin.no");
    if (f && f.type === "datetime") {
      const d = new Date(v);
      return isNaN(d) ? String(v) : d.toLocaleString(DATA.lang === "ru" ? "ru-RU" : "en-GB");
    }
    if (Array.isArray(v)) return v.join(", ");
    if (typeof v === "object") return JSON.stringify(v);
    if (f && f.choices && !f.multiple) return choiceLabel(f, String(v));
    return String(v);
  }

  // ------------------------------------------------------------------------------------------ HTTP
  /** {ok, status, data} of a JSON API call through Hotline.api (CSRF header, 401 -> sign-in page). */
  async function api(method, url, body) {
    try {
      return { ok: true, status: 200, data: await Hotline.api(method, url, body) };
    } catch (err) {
      if (!(err instanceof Hotline.ApiError)) throw err;
      return { ok: false, status: err.status, data: { error: { code: err.code, message: err.message, field: err.field } } };
    }
  }
  function errorOf(result) {
    const err = (result.data && result.data.error) || {};
    let field = err.field || "";
    if (/^(body|query|path)\./.test(field)) field = field.split(".")[1];
    else if (field === "body") field = "";
    let message = err.message || t("admin.http_error", { status: result.status });
    if (field && message.startsWith(field + ": ")) message = message.slice(field.length + 2);
    if (err.code && has("admin.error." + err.code) && !field) message = t("admin.error." + err.code) + ": " + message;
    return { field, message, code: err.code || "" };
  }

  // ------------------------------------------------------------------------------------------ notices
  // Page-level messages go to the framework's alert bar (#hotline-flash); a flash survives one navigation.
  function showNotice(text) {
    Hotline.flash(text, "ok");
  }
  function showProblem(text) {
    Hotline.flash(text, "error");
  }
  function hideMessages() {
    Hotline.clearFlash();
  }
  const FLASH = "hotline.admin.flash";
  function flash(text) {
    sessionStorage.setItem(FLASH, text);
  }
  function takeFlash() {
    const text = sessionStorage.getItem(FLASH);
    sessionStorage.removeItem(FLASH);
    if (text) showNotice(text);
  }

  // ------------------------------------------------------------------------------------------ confirm
  /** The framework's modal (a native confirm() would be dismissed by automation and looks foreign). */
  async function confirmDelete(text) {
    return (await Hotline.ask({ title: t("admin.confirm_title"), text, ok: t("admin.delete") })) !== null;
  }

  // ------------------------------------------------------------------------------------------ resources
  /** The non-configuration resources, described in the same shape as GET /api/v1/config. */
  function accountResources() {
    const roles = ["admin", "supervisor", "agent"];
    return {
      users: {
        name: "users",
        title: "user",
        key: "username",
        endpoint: "/api/v1/users",
        page: "/admin/users",
        serverSearch: true,
        serverSort: false,
        bulk_actions: ["delete", "enable", "disable"],
        fields: [
          { name: "username", type: "str", required: true, immutable: true, max_length: 64,
            pattern: "[A-Za-z0-9][A-Za-z0-9._@-]{0,63}" },
          { name: "display_name", type: "str", max_length: 128, default: "" },
          { name: "role", type: "str", required: true, choices: roles, multiple: false },
          { name: "language", type: "str", choices: ["en", "ru"], multiple: false, default: DATA.lang },
          { name: "agent", type: "str", nullable: true, references: "agents", max_length: 32 },
          { name: "password", type: "str", write_only: true, required: true, min_length: 10, max_length: 256 },
          { name: "enabled", type: "bool", edit_only: true, default: true },
          { name: "last_login_at", type: "datetime", read_only: true },
          { name: "created_at", type: "datetime", read_only: true },
        ],
      },
      api_keys: {
        name: "api_keys",
        title: "API key",
        key: "name",
        endpoint: "/api/v1/api-keys",
        page: "/admin/api-keys",
        serverSearch: false,
        serverSort: false,
        bulk_actions: ["delete", "enable", "disable"],
        fields: [
          { name: "name", type: "str", required: true, immutable: true, max_length: 64,
            pattern: "[A-Za-z0-9][A-Za-z0-9._-]{0,63}" },
          { name: "prefix", type: "str", read_only: true },
          { name: "scopes", type: "list", required: true, immutable: true, multiple: true,
            choices: Object.keys(DATA.scope_catalog || {}) },
          { name: "expires_at", type: "datetime", nullable: true, immutable: true },
          { name: "enabled", type: "bool", edit_only: true, default: true },
          { name: "created_by", type: "str", read_only: true },
          { name: "last_used_at", type: "datetime", read_only: true },
          { name: "created_at", type: "datetime", read_only: true },
        ],
      },
    };
  }

  let catalogPromise = null;
  /** name -> resource description (configuration resources from the server, plus users and API keys). */
  function catalog() {
    if (!catalogPromise) {
      catalogPromise = api("GET", "/api/v1/config").then((r) => {
        const out = {};
        if (r.ok) {
          for (const res of r.data.resources) {
            out[res.name] = Object.assign({}, res, {
              endpoint: "/api/v1/config/" + res.name,
              page: "/admin/config/" + res.name,
              serverSearch: true,
              serverSort: true,
              serverBulk: true,
            });
          }
        } else {
          showProblem(errorOf(r).message);
        }
        return Object.assign(out, accountResources());
      });
    }
    return catalogPromise;
  }

  const keyUrl = (res, key) => res.endpoint + "/" + encodeURIComponent(key);
  const editUrl = (res, key) => res.page + "/edit?key=" + encodeURIComponent(key);
  const isWritable = (f) => !f.read_only;
  const hasEnabled = (res) => res.fields.some((f) => f.name === "enabled" && !f.read_only);

  /** Options of a reference select: the keys of the referenced resource (cached per page). */
  const optionCache = new Map();
  function referenceKeys(resourceName) {
    if (!optionCache.has(resourceName)) {
      optionCache.set(
        resourceName,
        catalog().then(async (cat) => {
          const res = cat[resourceName];
          if (!res) return [];
          const r = await api("GET", res.endpoint + (res.serverSearch ? "?limit=1000" : ""));
          if (!r.ok) return [];
          return r.data.items.map((row) => {
            const label = row.name && row.name !== row[res.key] ? row[res.key] + " (" + row.name + ")" : "";
            return { value: String(row[res.key]), label: label || String(row[res.key]) };
          });
        }),
      );
    }
    return optionCache.get(resourceName);
  }

  // ------------------------------------------------------------------------------------------ list page
  function columnsOf(res) {
    const skip = new Set(["created_at", "updated_at"]);
    const cols = res.fields.filter((f) => !f.write_only && f.type !== "object" && !skip.has(f.name));
    const key = cols.find((f) => f.name === res.key);
    const rest = cols.filter((f) => f.name !== res.key);
    return (key ? [key] : []).concat(rest).slice(0, 7);
  }

  async function listView(resourceName) {
    const cat = await catalog();
    const res = cat[resourceName];
    if (!res) {
      showProblem(t("admin.unknown_resource", { name: resourceName }));
      return;
    }
    const params = new URLSearchParams(location.search);
    const state = {
      q: params.get("q") || "",
      offset: Math.max(0, parseInt(params.get("offset") || "0", 10) || 0),
      sort: params.get("sort") || "",
    };
    const cols = columnsOf(res);
    const writable = CAN_WRITE;
    const selected = new Set();

    const title = el("h1", { id: "admin-title", text: resourceTitle(res.name, res.title) });
    const description = has("admin.description." + res.name) ? t("admin.description." + res.name) : DATA.lang === "en" ? res.description || "" : "";
    const search = el("input", {
      type: "search",
      id: "admin-search",
      placeholder: t("admin.search"),
      "aria-label": t("admin.search"),
      value: state.q,
      maxlength: 128,
    });
    const newButton = writable
      ? el("a", { id: "admin-new", class: "admin-button admin-primary", href: res.page + "/new", text: t("admin.new") })
      : null;
    const count = el("span", { id: "admin-selected-count", class: "admin-muted" });
    const bulkButtons = [];
    if (writable) {
      const acts = res.bulk_actions || ["delete"];
      if (acts.includes("enable") || (acts.includes("update") && hasEnabled(res))) {
        bulkButtons.push(el("button", { type: "button", id: "admin-bulk-enable", text: t("admin.enable"), onclick: () => bulk("enable") }));
        bulkButtons.push(el("button", { type: "button", id: "admin-bulk-disable", text: t("admin.disable"), onclick: () => bulk("disable") }));
      }
      bulkButtons.push(
        el("button", { type: "button", id: "admin-bulk-delete", class: "admin-danger", text: t("admin.delete_selected"), onclick: () => bulk("delete") }),
      );
    }
    // "Set a field": one field, one value, every selected row (all or nothing on the server)
    const settable = writable && res.serverBulk && (res.bulk_actions || []).includes("update")
      ? res.fields.filter((f) => !f.read_only && !f.immutable && !f.write_only && f.name !== res.key && f.name !== "enabled")
      : [];
    const setPanel = settable.length ? el("div", { class: "admin-bulk-set", id: "admin-bulk-set", hidden: true }) : null;
    if (settable.length) {
      bulkButtons.push(el("button", { type: "button", id: "admin-bulk-set-open", text: t("admin.bulk_set"), onclick: () => openSet() }));
    }
    const bulkBar = writable ? el("div", { class: "admin-bulk", id: "admin-bulk" }, count, ...bulkButtons) : null;
    const selectAll = writable ? el("input", { type: "checkbox", id: "admin-select-all", "aria-label": t("admin.select_all") }) : null;
    const thead = el("thead", {}, el("tr", {}, writable ? el("th", { class: "admin-check" }, selectAll) : null, ...cols.map(headerCell), el("th", {})));
    const tbody = el("tbody", {});
    const table = el("table", { id: "admin-table", class: "admin-table", dataset: { resource: res.name } }, thead, tbody);
    const pageInfo = el("span", { id: "admin-page-info", class: "admin-muted" });
    const prev = el("button", { type: "button", id: "admin-prev", text: t("admin.prev"), onclick: () => move(-1) });
    const next = el("button", { type: "button", id: "admin-next", text: t("admin.next"), onclick: () => move(1) });
    const pager = el("div", { class: "admin-pager" }, prev, pageInfo, next);

    clear(root).append(
      el("div", { class: "admin-head" }, title, newButton),
      description ? el("p", { class: "admin-description", text: description }) : null,
      el("div", { class: "admin-toolbar" }, search, bulkBar),
      setPanel,
      el("div", { class: "admin-scroll" }, table),
      pager,
    );
    if (!writable) root.append(el("p", { id: "admin-read-only", class: "admin-muted", text: t("admin.read_only") }));
    takeFlash();

    function headerCell(f) {
      const sortable = res.serverSort ? !(res.key === "key" && f.name === "key") : true;
      const label = fieldLabel(res.name, f.name);
      if (!sortable) return el("th", { text: label });
      const current = state.sort === f.name ? " ▲" : state.sort === "-" + f.name ? " ▼" : "";
      return el(
        "th",
        { "aria-sort": current ? (current === " ▲" ? "ascending" : "descending") : null },
        el("button", {
          type: "button",
          class: "admin-sort",
          dataset: { sort: f.name },
          text: label + current,
          onclick: () => {
            state.sort = state.sort === f.name ? "-" + f.name : f.name;
            state.offset = 0;
            render();
          },
        }),
      );
    }

    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        state.q = search.value.trim();
        state.offset = 0;
        load();
      }, 250);
    });
    if (selectAll) {
      selectAll.addEventListener("change", () => {
        for (const box of tbody.querySelectorAll("input.admin-select")) {
          box.checked = selectAll.checked;
          if (box.checked) selected.add(box.value);
          else selected.delete(box.value);
        }
        updateCount();
      });
    }

    function updateCount() {
      count.textContent = t("admin.selected", { count: selected.size });
      for (const b of bulkButtons) b.disabled = selected.size === 0;
    }
    function move(direction) {
      state.offset = Math.max(0, state.offset + direction * PAGE_SIZE);
      load();
    }
    function render() {
      // headers show the sort; rebuild them, then reload
      clear(thead).append(el("tr", {}, writable ? el("th", { class: "admin-check" }, selectAll) : null, ...cols.map(headerCell), el("th", {})));
      load();
    }

    let generation = 0;
    async function load() {
      const mine = ++generation;
      const query = new URLSearchParams();
      if (state.q) query.set("q", state.q);
      if (state.offset) query.set("offset", String(state.offset));
      if (state.sort) query.set("sort", state.sort);
      history.replaceState(null, "", location.pathname + (query.toString() ? "?" + query : ""));
      const items = await fetchPage(res, state);
      if (mine !== generation) return; // a newer search answered first
      if (items.error) {
        showProblem(items.error);
        return;
      }
      selected.clear();
      if (selectAll) selectAll.checked = false;
      updateCount();
      clear(tbody);
      if (!items.rows.length) {
        tbody.append(el("tr", { class: "admin-empty" }, el("td", { colspan: cols.length + 2, text: state.q ? t("admin.no_match") : t("admin.empty") })));
      }
      for (const row of items.rows) tbody.append(rowOf(row));
      const first = items.total ? state.offset + 1 : 0;
      const last = state.offset + items.rows.length;
      pageInfo.textContent = t("admin.page_info", { first, last, total: items.total });
      prev.disabled = state.offset === 0;
      next.disabled = last >= items.total;
      root.dataset.loaded = String(mine);
    }

    function rowOf(row) {
      const key = String(row[res.key]);
      const cells = cols.map((f, i) => {
        const text = formatValue(f, row[f.name]);
        if (i === 0) return el("td", { class: "admin-key-cell" }, el("a", { href: editUrl(res, key), class: "admin-key", text }));
        return el("td", { dataset: { field: f.name }, text });
      });
      const box = writable
        ? el("input", {
            type: "checkbox",
            class: "admin-select",
            value: key,
            "aria-label": t("admin.select_one", { key }),
            onchange: (ev) => {
              if (ev.target.checked) selected.add(key);
              else selected.delete(key);
              updateCount();
            },
          })
        : null;
      const actions = el(
        "td",
        { class: "admin-row-actions" },
        el("a", { href: editUrl(res, key), class: "admin-edit", text: writable ? t("admin.edit") : t("admin.view") }),
        writable
          ? el("button", {
              type: "button",
              class: "admin-delete admin-link-danger",
              text: t("admin.delete"),
              onclick: async () => {
                if (!(await confirmDelete(t("admin.confirm_delete_one", { what: resourceOne(res.name, res.title), key })))) return;
                const r = await api("DELETE", keyUrl(res, key));
                if (r.ok) {
                  showNotice(t("admin.deleted_one", { key }));
                  await load();
                  showNotice(t("admin.deleted_one", { key }));
                } else showProblem(errorOf(r).message);
              },
            })
          : null,
      );
      return el("tr", { dataset: { key } }, writable ? el("td", { class: "admin-check" }, box) : null, ...cells, actions);
    }

    /** Keys of the selected rows, in list order. */
    const checkedKeys = () => [...tbody.querySelectorAll("input.admin-select:checked")].map((box) => box.value);

    async function bulk(action) {
      const keys = checkedKeys();
      if (!keys.length) return;
      if (action === "delete" && !(await confirmDelete(t("admin.confirm_delete_many", { count: keys.length, keys: keys.join(", ") })))) return;
      let r;
      if (res.serverBulk) {
        r = await api("POST", res.endpoint + "/bulk", { action, keys });
      } else {
        r = { ok: true };
        for (const key of keys) {
          r = action === "delete" ? await api("DELETE", keyUrl(res, key)) : await api("PATCH", keyUrl(res, key), { enabled: action === "enable" });
          if (!r.ok) break;
        }
      }
      if (r.ok) {
        await load();
        showNotice(t("admin.bulk_done_" + action, { count: keys.length }));
      } else showProblem(errorOf(r).message);
    }

    /** The set-a-field panel: a field chooser, the field's own control (the edit form's), apply, cancel. */
    async function openSet(fieldName) {
      const chooser = el("select", { id: "admin-bulk-field", "aria-label": t("admin.bulk_field") });
      for (const f of settable) chooser.append(el("option", { value: f.name, text: fieldLabel(res.name, f.name) }));
      const f = settable.find((x) => x.name === fieldName) || settable[0];
      chooser.value = f.name;
      chooser.addEventListener("change", () => openSet(chooser.value));
      const controls = new Map();
      const row = await fieldRow(res, f, {}, true, true, controls); // as on a new record: the default is offered
      const control = controls.get(f.name);
      const apply = el("button", { type: "submit", id: "admin-bulk-apply", class: "admin-primary", text: t("admin.bulk_apply") });
      const cancel = el("button", { type: "button", id: "admin-bulk-cancel", text: t("common.cancel"), onclick: () => { setPanel.hidden = true; } });
      const form = el("form", { class: "admin-form", novalidate: true },
        el("label", { for: "admin-bulk-field", class: "admin-label", text: t("admin.bulk_field") }), chooser, row,
        el("div", { class: "admin-actions" }, apply, cancel));
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const keys = checkedKeys();
        if (!keys.length) return;
        control.error.textContent = "";
        const message = check(control, true);
        if (message) {
          control.error.textContent = message;
          control.input.focus();
          return;
        }
        let value = control.get();
        if (value === undefined) value = f.nullable ? null : "";
        apply.disabled = true;
        const r = await api("POST", res.endpoint + "/bulk", { action: "update", keys, data: { [f.name]: value } });
        apply.disabled = false;
        if (!r.ok) {
          const err = errorOf(r);
          control.error.textContent = err.message;
          control.input.focus();
          return;
        }
        setPanel.hidden = true;
        await load();
        showNotice(t("admin.bulk_done_update", { count: keys.length, field: fieldLabel(res.name, f.name) }));
      });
      clear(setPanel).append(form);
      setPanel.hidden = false;
      (fieldName ? chooser : control.input).focus();
    }

    updateCount();
    await load();
  }

  /** One page of rows: from the server (q, limit, offset, sort), or filtered and paged here. */
  async function fetchPage(res, state) {
    const query = new URLSearchParams();
    if (res.serverSearch) {
      if (state.q) query.set("q", state.q);
      query.set("limit", String(PAGE_SIZE));
      query.set("offset", String(state.offset));
      if (state.sort && res.serverSort) query.set("sort", state.sort);
    }
    const r = await api("GET", res.endpoint + (query.toString() ? "?" + query : ""));
    if (!r.ok) return { error: errorOf(r).message };
    let rows = r.data.items;
    let total = r.data.total;
    if (!res.serverSearch) {
      const q = state.q.toLowerCase();
      if (q) rows = rows.filter((row) => Object.values(row).some((v) => v !== null && String(v).toLowerCase().includes(q)));
      total = rows.length;
    }
    if (state.sort && !res.serverSort) {
      const desc = state.sort.startsWith("-");
      const name = desc ? state.sort.slice(1) : state.sort;
      rows = rows.slice().sort((a, b) => {
        const x = a[name] === null || a[name] === undefined ? "" : a[name];
        const y = b[name] === null || b[name] === undefined ? "" : b[name];
        const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return desc ? -c : c;
      });
    }
    if (!res.serverSearch) rows = rows.slice(state.offset, state.offset + PAGE_SIZE);
    return { rows, total };
  }

  // ------------------------------------------------------------------------------------------ form page
  async function formView(resourceName, key) {
    const cat = await catalog();
    const res = cat[resourceName];
    if (!res) {
      showProblem(t("admin.unknown_resource", { name: resourceName }));
      return;
    }
    const creating = key === null;
    let row = {};
    if (!creating) {
      const r = await api("GET", keyUrl(res, key));
      if (!r.ok) {
        clear(root).append(
          el("h1", { id: "admin-title", text: capital(resourceOne(res.name, res.title)) + " " + key }),
          el("a", { href: res.page, class: "admin-back", text: t("admin.back_to_list") }),
        );
        showProblem(errorOf(r).message);
        return;
      }
      row = r.data;
    }
    const writable = CAN_WRITE;
    const controls = new Map(); // field name -> {field, input, get(), error}
    const form = el("form", { id: "admin-form", class: "admin-form", novalidate: true, dataset: { resource: res.name } });
    const heading = creating
      ? t("admin.new_title", { what: resourceOne(res.name, res.title) })
      : capital(resourceOne(res.name, res.title)) + " " + key;
    const formError = el("div", { id: "admin-form-error", class: "admin-problem", role: "alert", hidden: true });

    const fields = res.fields.filter((f) => {
      if (f.read_only) return !creating && f.name !== res.key;
      if (f.edit_only) return !creating;
      return true;
    });
    for (const f of fields) form.append(await fieldRow(res, f, row, creating, writable, controls));

    const save = writable
      ? el("button", { type: "submit", id: "admin-save", class: "admin-primary", text: creating ? t("admin.create") : t("admin.save") })
      : null;
    const del =
      writable && !creating
        ? el("button", { type: "button", id: "admin-delete", class: "admin-danger", text: t("admin.delete"), onclick: onDelete })
        : null;
    form.append(
      formError,
      el("div", { class: "admin-actions" }, save, del, el("a", { href: res.page, class: "admin-back", id: "admin-back", text: t("admin.back_to_list") })),
    );
    const once = el("div", { id: "admin-once", class: "admin-once", hidden: true });
    clear(root).append(el("h1", { id: "admin-title", text: heading }), once, form);
    if (!writable) root.append(el("p", { id: "admin-read-only", class: "admin-muted", text: t("admin.read_only") }));
    takeFlash();

    // hints follow typing ("input"), not "change": a message appearing or vanishing on blur would move the
    // buttons under the pointer between mousedown and click
    for (const c of controls.values()) c.input.addEventListener("input", () => hint(c));

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!writable) return;
      hideMessages();
      formError.hidden = true;
      let bad = null;
      for (const c of controls.values()) {
        c.error.textContent = "";
        const message = check(c, creating);
        if (message) {
          c.error.textContent = message;
          bad = bad || c;
        }
      }
      if (bad) {
        bad.input.focus();
        return;
      }
      const body = {};
      for (const [name, c] of controls) {
        if (c.field.read_only || (!creating && c.field.immutable)) continue;
        const value = c.get();
        if (value === undefined) continue;
        if (!creating && !c.field.write_only && same(value, row[name])) continue;
        body[name] = value;
      }
      if (!creating && !Object.keys(body).length) {
        showNotice(t("admin.nothing_changed"));
        return;
      }
      save.disabled = true;
      const r = creating ? await api("POST", res.endpoint, body) : await api("PATCH", keyUrl(res, key), body);
      save.disabled = false;
      if (!r.ok) {
        const err = errorOf(r);
        const c = controls.get(err.field);
        if (c) {
          c.error.textContent = err.message;
          c.input.focus();
        } else {
          formError.textContent = (err.field ? fieldLabel(res.name, err.field) + ": " : "") + err.message;
          formError.hidden = false;
        }
        return;
      }
      const newKey = String(r.data[res.key] !== undefined ? r.data[res.key] : key);
      const secrets = shownOnce(res, r.data);
      if (secrets.length) {
        showOnce(once, secrets, res, newKey, creating);
        form.hidden = true;
        return;
      }
      if (creating) {
        flash(t("admin.created_one", { key: newKey }));
        location.assign(res.page);
      } else {
        flash(t("admin.saved"));
        location.assign(editUrl(res, newKey));
      }
    });

    async function onDelete() {
      if (!(await confirmDelete(t("admin.confirm_delete_one", { what: resourceOne(res.name, res.title), key })))) return;
      const r = await api("DELETE", keyUrl(res, key));
      if (r.ok) {
        flash(t("admin.deleted_one", { key }));
        location.assign(res.page);
      } else showProblem(errorOf(r).message);
    }
  }

  function same(value, old) {
    if (value === null || old === null || value === undefined || old === undefined) return value === old;
    if (typeof value === "object") return JSON.stringify(value) === JSON.stringify(old);
    return String(value) === String(old);
  }

  /** Values a create answered that are not ordinary fields (an API key, a generated secret): shown once. */
  function shownOnce(res, data) {
    const known = new Set(res.fields.filter((f) => !f.write_only).map((f) => f.name));
    return Object.entries(data).filter(([k, v]) => !known.has(k) && typeof v === "string" && v !== "");
  }

  function showOnce(box, secrets, res, newKey, creating) {
    clear(box).append(el("p", { class: "admin-once-warning", text: t("admin.shown_once") }));
    for (const [name, value] of secrets) {
      const input = el("input", { type: "text", readonly: true, value, id: "admin-once-" + name, class: "admin-once-value", dataset: { field: name } });
      const copied = el("span", { class: "admin-muted", role: "status" });
      const copy = el("button", {
        type: "button",
        id: "admin-once-copy-" + name,
        class: "admin-copy",
        text: t("admin.copy"),
        onclick: async () => {
          input.select();
          try {
            await navigator.clipboard.writeText(value);
          } catch (err) {
            document.execCommand("copy"); // plain http: the Clipboard API needs a secure context
          }
          copied.textContent = t("admin.copied");
        },
      });
      box.append(el("label", { for: input.id, text: fieldLabel(res.name, name) }), el("div", { class: "admin-once-row" }, input, copy, copied));
    }
    box.append(
      el("div", { class: "admin-actions" }, el("a", { href: creating ? res.page : editUrl(res, newKey), id: "admin-once-done", class: "admin-button", text: t("admin.done") })),
    );
    box.hidden = false;
  }

  async function fieldRow(res, f, row, creating, writable, controls) {
    const id = "admin-field-" + f.name;
    const value = creating ? (f.default !== undefined ? f.default : null) : row[f.name];
    const locked = !writable || f.read_only || (!creating && f.immutable);
    const error = el("div", { class: "admin-error", id: "admin-error-" + f.name, role: "alert", dataset: { field: f.name } });
    let input;
    let get;
    let extra = null; // a datalist of suggestions, next to its input

    if (f.read_only) {
      input = el("output", { id, class: "admin-output", text: formatValue(f, value) });
      get = () => undefined;
    } else if (f.type === "bool") {
      input = el("input", { type: "checkbox", id, name: f.name, checked: Boolean(value), disabled: locked });
      get = () => input.checked;
    } else if (f.choices && f.choices.length && f.multiple) {
      const chosen = new Set(Array.isArray(value) ? value : String(value || "").split(",").filter(Boolean));
      input = el("fieldset", { id, class: "admin-checks", disabled: locked });
      for (const choice of f.choices) {
        const cid = id + "-" + choice.replace(/[^A-Za-z0-9_-]/g, "_");
        const box = el("input", { type: "checkbox", id: cid, value: choice, checked: chosen.has(choice), dataset: { choice } });
        const scopeKey = "admin.scope." + choice.replace(/[^a-z0-9_]/g, "_");
        const label = f.name === "scopes" && has(scopeKey) ? choice + " — " + t(scopeKey) : choiceLabel(f, choice);
        input.append(el("label", { class: "admin-check-label", for: cid }, box, " ", label));
      }
      get = () => {
        const picked = [...input.querySelectorAll("input:checked")].map((b) => b.value);
        return f.type === "list" ? picked : picked.join(",");
      };
    } else if (f.choices && f.choices.length) {
      input = el("select", { id, name: f.name, disabled: locked });
      const options = f.choices.slice();
      if ((f.nullable || (!f.required && !options.includes("") && value === null)) && !options.includes("")) input.append(el("option", { value: "", text: t("admin.choice_none") }));
      for (const choice of options) input.append(el("option", { value: choice, text: choiceLabel(f, choice) }));
      input.value = value === null || value === undefined ? (f.required && creating ? options[0] : "") : String(value);
      get = () => (input.value === "" && f.nullable ? null : input.value);
    } else if (f.references) {
      input = el("select", { id, name: f.name, disabled: locked, dataset: { references: f.references } });
      if (!f.required) input.append(el("option", { value: "", text: t("admin.choice_none") }));
      else if (creating) input.append(el("option", { value: "", text: t("admin.choose") }));
      const keys = await referenceKeys(f.references);
      const current = value === null || value === undefined ? "" : String(value);
      if (current && !keys.some((k) => k.value === current)) input.append(el("option", { value: current, text: current }));
      for (const k of keys) input.append(el("option", { value: k.value, text: k.label }));
      input.value = current;
      get = () => (input.value === "" ? (f.nullable ? null : creating ? undefined : "") : input.value);
    } else if (f.type === "int" || f.type === "float") {
      input = el("input", {
        type: "number",
        id,
        name: f.name,
        disabled: locked,
        min: f.minimum,
        max: f.maximum,
        step: f.type === "int" ? 1 : "any",
        value: value === null || value === undefined ? "" : value,
        inputmode: "numeric",
      });
      get = () => {
        const raw = input.value.trim();
        if (raw === "") return f.nullable ? null : undefined;
        const n = Number(raw);
        return Number.isNaN(n) ? raw : n;
      };
    } else if (f.type === "date") {
      input = el("input", { type: "date", id, name: f.name, disabled: locked, value: value || "" });
      get = () => (input.value === "" ? (f.nullable ? null : undefined) : input.value);
    } else if (f.type === "datetime") {
      const local = value ? toLocalInput(value) : "";
      input = el("input", { type: "datetime-local", id, name: f.name, disabled: locked, value: local });
      get = () => (input.value === "" ? (f.nullable ? null : undefined) : new Date(input.value).toISOString());
    } else if (f.type === "object") {
      input = el("textarea", { id, name: f.name, disabled: locked, rows: 4, class: "admin-json" });
      input.value = value === null || value === undefined ? "" : JSON.stringify(value, null, 2);
      get = () => {
        const raw = input.value.trim();
        if (raw === "") return f.nullable ? null : undefined;
        try {
          return JSON.parse(raw);
        } catch (err) {
          return raw; // the server names the field and says why
        }
      };
    } else {
      const secret = Boolean(f.write_only);
      input = el("input", {
        type: secret ? "password" : "text",
        id,
        name: f.name,
        disabled: locked,
        maxlength: f.max_length,
        autocomplete: secret ? "new-password" : "off",
        placeholder: secret && !creating ? t("admin.secret_keep") : null,
        value: secret ? "" : value === null || value === undefined ? "" : value,
      });
      if (f.references_by) extra = attachDestinationList(input, f, controls);
      get = () => {
        const raw = input.value;
        if (secret) return raw === "" ? undefined : raw;
        if (raw === "" && creating && !f.required) return undefined;
        if (raw === "" && f.nullable) return null;
        return raw;
      };
    }
    const control = { field: f, input, get, error, resource: res.name };
    if (!f.read_only) controls.set(f.name, control);
    const hintText = fieldHint(res.name, f);
    const secretState =
      f.write_only && !creating && Object.prototype.hasOwnProperty.call(row, "has_" + f.name)
        ? el("span", { class: "admin-muted admin-secret-state", text: row["has_" + f.name] ? t("admin.secret_set") : t("admin.secret_unset") })
        : null;
    const label = el("label", { for: id, class: "admin-label" }, fieldLabel(res.name, f.name), f.required && !f.read_only && creating ? el("span", { class: "admin-required", text: " *" }) : null);
    return el(
      "div",
      { class: "admin-field admin-field-" + f.type, dataset: { field: f.name } },
      label,
      el("div", { class: "admin-input" }, input, extra, secretState, hintText ? el("div", { class: "admin-hint", text: hintText }) : null, error),
    );
  }

  function toLocalInput(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const pad = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  /** A destination value: suggestions from the resource its type field names (queue -> queue names...). */
  function attachDestinationList(input, f, controls) {
    const listId = input.id + "-options";
    const list = el("datalist", { id: listId });
    input.setAttribute("list", listId);
    const resources = f.references_by.resources || {};
    const refresh = async () => {
      const typeControl = controls.get(f.references_by.field);
      const target = typeControl ? resources[typeControl.input.value] : null;
      clear(list);
      if (!target) return;
      for (const k of await referenceKeys(target)) list.append(el("option", { value: k.value, label: k.label }));
    };
    // the type field comes first in every spec; wait until it is registered
    queueMicrotask(() => {
      const typeControl = controls.get(f.references_by.field);
      if (typeControl) typeControl.input.addEventListener("change", refresh);
      refresh();
    });
    return list;
  }

  /** A client-side hint for one control, or "" (the server re-checks everything). */
  function check(c, creating) {
    const f = c.field;
    if (f.read_only || (!creating && f.immutable)) return "";
    const v = c.get();
    const empty = v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length);
    if (empty) {
      if (f.required && creating) return t("admin.err_required");
      if (f.required && !creating && !f.write_only && v === "") return t("admin.err_required");
      return "";
    }
    if (f.type === "int" || f.type === "float") {
      if (typeof v !== "number" || (f.type === "int" && !Number.isInteger(v))) return t(f.type === "int" ? "admin.err_int" : "admin.err_number");
      if (f.minimum !== undefined && f.minimum !== null && v < f.minimum) return t("admin.err_min", { min: f.minimum });
      if (f.maximum !== undefined && f.maximum !== null && v > f.maximum) return t("admin.err_max", { max: f.maximum });
    }
    if (typeof v === "string") {
      if (f.max_length && v.length > f.max_length) return t("admin.err_max_length", { max: f.max_length });
      if (f.min_length && v.length < f.min_length) return t("admin.err_min_length", { min: f.min_length });
      if (f.pattern) {
        let rx = null;
        try {
          rx = new RegExp("^(?:" + f.pattern + ")$", "u");
        } catch (err) {
          rx = null; // a Python-only construct: leave it to the server
        }
        if (rx && !rx.test(v)) return t("admin.err_pattern");
      }
    }
    if (f.type === "object" && typeof v === "string") return t("admin.err_json");
    return "";
  }
  function hint(c) {
    const message = check(c, true);
    c.error.textContent = message === t("admin.err_required") ? "" : message;
  }

  // ------------------------------------------------------------------------------------------ media
  async function mediaView() {
    const title = el("h1", { id: "admin-title", text: t("admin.media") });
    const prompts = el("tbody", {});
    const files = el("tbody", {});
    const classSelect = el("select", { id: "admin-moh-class", name: "moh_class" });
    clear(root).append(title);

    if (CAN_WRITE) {
      root.append(
        uploadForm("prompt", [
          labelled("admin-prompt-name", t("admin.media_prompt_name"), el("input", { type: "text", id: "admin-prompt-name", maxlength: 64, required: true })),
          labelled("admin-prompt-replace", t("admin.media_replace"), el("input", { type: "checkbox", id: "admin-prompt-replace" })),
        ]),
        uploadForm("moh", [
          labelled("admin-moh-class", t("admin.media_moh_class"), classSelect),
          labelled("admin-moh-name", t("admin.media_moh_name"), el("input", { type: "text", id: "admin-moh-name", maxlength: 64, required: true })),
        ]),
      );
    }
    root.append(
      el("h2", { text: t("admin.media_prompts") }),
      el("table", { id: "admin-prompts", class: "admin-table" }, el("thead", {}, el("tr", {}, ...["media_name", "media_original", "media_duration", "media_size", "media_uploaded"].map((k) => el("th", { text: t("admin." + k) })))), prompts),
      el("h2", { text: t("admin.media_moh_files") }),
      el("table", { id: "admin-moh-files", class: "admin-table" }, el("thead", {}, el("tr", {}, ...["media_moh_class", "media_name", "media_original", "media_duration", "media_size", "media_uploaded"].map((k) => el("th", { text: t("admin." + k) })))), files),
    );
    if (!CAN_WRITE) root.append(el("p", { id: "admin-read-only", class: "admin-muted", text: t("admin.read_only") }));

    async function load() {
      const r = await api("GET", "/api/v1/media");
      if (!r.ok) {
        showProblem(errorOf(r).message);
        return;
      }
      const cells = (f) => [
        el("td", { text: f.name }),
        el("td", { text: f.original_name }),
        el("td", { text: Number(f.duration_s).toFixed(1) + " s" }),
        el("td", { text: String(f.size) }),
        el("td", { text: formatValue({ type: "datetime" }, f.created_at) }),
      ];
      const none = (span) => el("tr", { class: "admin-empty" }, el("td", { colspan: span, text: t("admin.empty") }));
      clear(prompts).append(...r.data.prompts.map((f) => el("tr", { dataset: { name: f.name } }, ...cells(f))));
      clear(files).append(...r.data.moh_files.map((f) => el("tr", { dataset: { name: f.moh_class + "/" + f.name } }, el("td", { text: f.moh_class }), ...cells(f))));
      if (!r.data.prompts.length) prompts.append(none(5));
      if (!r.data.moh_files.length) files.append(none(6));
      const current = classSelect.value;
      clear(classSelect).append(...r.data.moh_classes.map((c) => el("option", { value: c.name, text: c.name })));
      if (current) classSelect.value = current;
    }

    function labelled(id, text, input) {
      return el("div", { class: "admin-field" }, el("label", { for: id, class: "admin-label", text }), el("div", { class: "admin-input" }, input));
    }

    function uploadForm(kind, extra) {
      const fileInput = el("input", { type: "file", id: "admin-" + kind + "-file", accept: ".wav,.mp3,audio/wav,audio/mpeg", required: true });
      const progress = el("progress", { id: "admin-" + kind + "-progress", max: 100, value: 0, hidden: true });
      const status = el("div", { id: "admin-" + kind + "-status", class: "admin-upload-status", role: "status" });
      const button = el("button", { type: "submit", id: "admin-" + kind + "-upload", class: "admin-primary", text: t("admin.upload") });
      const form = el(
        "form",
        { id: "admin-" + kind + "-form", class: "admin-form admin-upload" },
        el("h2", { text: t(kind === "prompt" ? "admin.media_upload_prompt" : "admin.media_upload_moh") }),
        ...extra,
        el("div", { class: "admin-field" }, el("label", { for: fileInput.id, class: "admin-label", text: t("admin.media_file") }), el("div", { class: "admin-input" }, fileInput, el("div", { class: "admin-hint", text: t("admin.media_file_hint") }))),
        el("div", { class: "admin-actions" }, button, progress),
        status,
      );
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        status.className = "admin-upload-status";
        const name = form.querySelector("input[type=text]").value.trim();
        const file = fileInput.files[0];
        if (!name || !file || (kind === "moh" && !classSelect.value)) {
          status.textContent = !file ? t("admin.media_need_file") : kind === "moh" && !classSelect.value ? t("admin.media_need_class") : t("admin.media_need_name");
          status.classList.add("admin-error");
          return;
        }
        let url = kind === "prompt" ? "/api/v1/media/prompts/" + encodeURIComponent(name) : "/api/v1/media/moh/" + encodeURIComponent(classSelect.value) + "/" + encodeURIComponent(name);
        if (kind === "prompt" && form.querySelector("#admin-prompt-replace").checked) url += "?replace=true";
        const body = new FormData();
        body.append("file", file);
        const xhr = new XMLHttpRequest(); // fetch() reports no upload progress
        xhr.open("POST", url);
        xhr.setRequestHeader("X-CSRF-Token", DATA.csrf_token || "");
        xhr.setRequestHeader("Accept", "application/json");
        xhr.setRequestHeader("Accept-Language", DATA.lang || "en");
        progress.hidden = false;
        progress.value = 0;
        button.disabled = true;
        xhr.upload.addEventListener("progress", (e) => {
          if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
        });
        xhr.addEventListener("loadend", async () => {
          button.disabled = false;
          let data = null;
          try {
            data = JSON.parse(xhr.responseText);
          } catch (err) {
            data = null;
          }
          if (xhr.status >= 200 && xhr.status < 300) {
            progress.value = 100;
            status.textContent = t("admin.media_uploaded_ok", { name });
            status.classList.add("admin-ok");
            form.reset();
            await load();
          } else {
            const err = errorOf({ status: xhr.status, data: data || {} });
            status.textContent = xhr.status === 0 ? t("admin.network_error") : (err.field ? fieldLabel("media", err.field) + ": " : "") + err.message;
            status.classList.add("admin-error");
          }
        });
        xhr.send(body);
      });
      return form;
    }
    await load();
  }

  // ------------------------------------------------------------------------------------------ audit
  async function auditView() {
    const params = new URLSearchParams(location.search);
    const state = { resource: params.get("resource") || "", actor: params.get("actor") || "", key: params.get("key") || "", offset: 0 };
    const filters = {};
    const filterRow = el("form", { id: "admin-audit-filter", class: "admin-toolbar" });
    for (const name of ["resource", "actor", "key"]) {
      filters[name] = el("input", { type: "search", id: "admin-audit-" + name, placeholder: t("admin.audit_" + name), "aria-label": t("admin.audit_" + name), value: state[name], maxlength: name === "key" ? 255 : 128 });
      filterRow.append(filters[name]);
    }
    filterRow.append(el("button", { type: "submit", id: "admin-audit-apply", text: t("admin.filter") }));
    // what the audit log calls things: configuration resources by name, plus the accounts' and media's own
    const known = el("datalist", { id: "admin-audit-resources" });
    filters.resource.setAttribute("list", known.id);
    filterRow.append(known);
    catalog().then((cat) => {
      const names = Object.keys(cat).filter((n) => n !== "users" && n !== "api_keys");
      for (const name of names.concat(["user", "api_key", "prompt", "moh"])) known.append(el("option", { value: name }));
    });
    const tbody = el("tbody", {});
    const cols = ["at", "actor", "action", "resource", "key", "interface", "source_ip", "changes"];
    const pageInfo = el("span", { id: "admin-page-info", class: "admin-muted" });
    const prev = el("button", { type: "button", id: "admin-prev", text: t("admin.prev"), onclick: () => move(-1) });
    const next = el("button", { type: "button", id: "admin-next", text: t("admin.next"), onclick: () => move(1) });
    clear(root).append(
      el("h1", { id: "admin-title", text: t("admin.audit") }),
      filterRow,
      el("table", { id: "admin-audit-table", class: "admin-table" }, el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { text: t("admin.audit_col_" + c) })))), tbody),
      el("div", { class: "admin-pager" }, prev, pageInfo, next),
    );
    filterRow.addEventListener("submit", (ev) => {
      ev.preventDefault();
      for (const name of Object.keys(filters)) state[name] = filters[name].value.trim();
      state.offset = 0;
      load();
    });
    function move(d) {
      state.offset = Math.max(0, state.offset + d * PAGE_SIZE);
      load();
    }
    function changes(e) {
      if (e.before && e.after && typeof e.before === "object" && typeof e.after === "object") {
        const diff = Object.keys(e.after).filter((k) => JSON.stringify(e.before[k]) !== JSON.stringify(e.after[k]));
        return diff.map((k) => k + ": " + formatValue(null, e.before[k]) + " → " + formatValue(null, e.after[k])).join("; ");
      }
      const v = e.after || e.before;
      return v === null || v === undefined ? "" : JSON.stringify(v);
    }
    async function load() {
      const query = new URLSearchParams();
      for (const name of ["resource", "actor", "key"]) if (state[name]) query.set(name, state[name]);
      const shown = query.toString();
      history.replaceState(null, "", location.pathname + (shown ? "?" + shown : ""));
      query.set("limit", String(PAGE_SIZE));
      query.set("offset", String(state.offset));
      const r = await api("GET", "/api/v1/audit?" + query);
      if (!r.ok) {
        showProblem(errorOf(r).message);
        return;
      }
      hideMessages();
      clear(tbody);
      if (!r.data.items.length) tbody.append(el("tr", { class: "admin-empty" }, el("td", { colspan: cols.length, text: t("admin.empty") })));
      for (const e of r.data.items) {
        tbody.append(
          el(
            "tr",
            { dataset: { id: e.id } },
            el("td", { text: formatValue({ type: "datetime" }, e.at) }),
            el("td", { dataset: { field: "actor" }, text: e.actor }),
            el("td", { dataset: { field: "action" }, text: has("admin.action." + e.action) ? t("admin.action." + e.action) : e.action }),
            el("td", { dataset: { field: "resource" }, text: e.resource }),
            el("td", { dataset: { field: "key" }, text: e.key }),
            el("td", { text: e.interface }),
            el("td", { text: e.source_ip }),
            el("td", { class: "admin-changes", text: changes(e) }),
          ),
        );
      }
      const first = r.data.total ? state.offset + 1 : 0;
      const last = state.offset + r.data.items.length;
      pageInfo.textContent = t("admin.page_info", { first, last, total: r.data.total });
      prev.disabled = state.offset === 0;
      next.disabled = last >= r.data.total;
      root.dataset.loaded = String(Date.now());
    }
    await load();
  }

  // ------------------------------------------------------------------------------------------ start
  const views = {
    list: () => listView(DATA.resource),
    new: () => formView(DATA.resource, null),
    edit: () => formView(DATA.resource, DATA.key),
    media: mediaView,
    audit: auditView,
  };
  const view = views[DATA.view];
  if (view) {
    view().catch((err) => {
      showProblem(t("admin.page_failed") + " " + String(err && err.message ? err.message : err));
    });
  }
})();
