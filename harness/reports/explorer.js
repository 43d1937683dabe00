// harness audit report: the example explorer (the report's one script; allowed by its sha256).
// Reads the JSON block #explorer-data and builds the table with textContent only: no innerHTML,
// no eval, no network. Sort by clicking a header, filter with the controls, click a row for details.
(function () {
  "use strict";
  var started = performance.now();
  var block = document.getElementById("explorer-data");
  var section = document.getElementById("explorer");
  if (!block || !section) { return; }
  var data = JSON.parse(block.textContent);
  var rows = data.rows;
  var pageSize = data.pageSize || 50;
  var tbody = section.querySelector("table.ex-table tbody");
  var status = section.querySelector(".ex-status");
  var pageLabel = section.querySelector(".ex-page");
  var state = { q: "", correct: "", label: "", pred: "", attack: "", group: "", flipped: false,
                heat: false, sort: null, desc: false, page: 0, open: {} };
  var view = rows;

  rows.forEach(function (r, i) {
    r._i = i;
    r._search = (r.id + "\u0000" + (r.text || "") + "\u0000" + (r.label || "") + "\u0000" +
                 (r.pred || "")).toLowerCase();
    r._correct = r.ok === true ? "correct" : (r.ok === false ? "wrong" : "no prediction");
    r._attack = r.attacks.length ? r.attacks.map(function (a) { return a.result; }) : ["not attacked"];
  });

  function node(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }

  function fmt(x) {
    if (x === null || x === undefined) { return "—"; }
    return typeof x === "number" ? x.toFixed(4) : String(x);
  }

  function fillSelect(name, values) {
    var select = section.querySelector('select[data-filter="' + name + '"]');
    var seen = {};
    values.forEach(function (v) { seen[v] = (seen[v] || 0) + 1; });
    Object.keys(seen).sort().forEach(function (v) {
      var o = node("option", v + " (" + seen[v] + ")");
      o.value = v;
      select.appendChild(o);
    });
  }

  fillSelect("correct", rows.map(function (r) { return r._correct; }));
  fillSelect("label", rows.map(function (r) { return r.label || "—"; }));
  fillSelect("pred", rows.map(function (r) { return r.pred || "—"; }));
  fillSelect("attack", [].concat.apply([], rows.map(function (r) { return r._attack; })));
  fillSelect("group", [].concat.apply([], rows.map(function (r) { return r.groups; })));

  function keep(r) {
    var s = state;
    if (s.q && r._search.indexOf(s.q) < 0) { return false; }
    if (s.correct && r._correct !== s.correct) { return false; }
    if (s.label && (r.label || "—") !== s.label) { return false; }
    if (s.pred && (r.pred || "—") !== s.pred) { return false; }
    if (s.attack && r._attack.indexOf(s.attack) < 0) { return false; }
    if (s.group && r.groups.indexOf(s.group) < 0) { return false; }
    if (s.flipped && !r.flips.length) { return false; }
    if (s.heat && !r.heat) { return false; }
    return true;
  }

  function sortKey(r, key) {
    var v = r[key];
    if (key === "groups" || key === "attacks" || key === "flips") { return v.length; }
    if (key === "ok") { return v === null ? -1 : (v ? 1 : 0); }
    return v === null || v === undefined ? "" : v;
  }

  function compare(a, b) {
    var ka = sortKey(a, state.sort), kb = sortKey(b, state.sort);
    var c = 0;
    if ((ka === "") !== (kb === "")) { return ka === "" ? 1 : -1; }  // missing values last
    if (typeof ka === "number" && typeof kb === "number") { c = ka - kb; }
    else { ka = String(ka); kb = String(kb); c = ka < kb ? -1 : (ka > kb ? 1 : 0); }
    if (state.desc) { c = -c; }
    return c || a._i - b._i;
  }

  function heatMap(heat) {
    var box = node("div", null, "heat");
    Object.keys(heat.methods).forEach(function (method) {
      var scores = heat.methods[method];
      var top = 0;
      scores.forEach(function (s) { top = Math.max(top, Math.abs(s || 0)); });
      var line = node("div");
      line.appendChild(node("span", method, "method"));
      heat.words.forEach(function (w, k) {
        var s = scores[k] || 0;
        var a = top > 0 ? Math.min(1, Math.abs(s) / top) : 0;
        var span = node("span", w, "w");
        span.title = method + ": " + s.toFixed(4);
        span.style.backgroundColor = s >= 0 ? "rgba(47,133,90," + a.toFixed(3) + ")"
                                            : "rgba(192,57,43," + a.toFixed(3) + ")";
        line.appendChild(span);
        line.appendChild(document.createTextNode(" "));
      });
      box.appendChild(line);
    });
    return box;
  }

  function details(r) {
    var td = node("td", null, "ex-detail");
    td.colSpan = 9;
    td.appendChild(node("p", r.text === null ? "(text not recorded in this run folder)" : r.text, "ex-text"));
    if (r.err) { td.appendChild(node("p", "prediction failed: " + r.err, "notice")); }
    if (r.probs) {
      td.appendChild(node("p", "probabilities: " + r.probs.map(function (p) { return p.toFixed(4); }).join(", "), "desc"));
    }
    r.attacks.forEach(function (a) {
      var p = node("p", a.recipe + ": " + a.result + (a.text ? " → " : ""));
      if (a.text) { p.appendChild(node("q", a.text)); }
      td.appendChild(p);
    });
    if (r.flips.length) { td.appendChild(node("p", "flipped by: " + r.flips.join(", "), "desc")); }
    if (r.heat) { td.appendChild(heatMap(r.heat)); }
    var tr = node("tr", null, "ex-detail-row");
    tr.appendChild(td);
    return tr;
  }

  function cells(r) {
    var tr = node("tr", null, r.ok === false ? "ex-row wrong" : "ex-row");
    tr.setAttribute("data-id", r.id);
    var text = r.text === null ? "" : (r.text.length > 140 ? r.text.slice(0, 140) + "…" : r.text);
    [r.id, text, r.label, r.pred, fmt(r.conf), r._correct, r.groups.join(", "),
     r.attacks.map(function (a) { return a.recipe + ": " + a.result; }).join(", "),
     r.flips.join(", ")].forEach(function (v, k) {
      tr.appendChild(node("td", v === null ? "—" : v, k === 4 ? "num" : (k === 1 ? "text" : null)));
    });
    tr.addEventListener("click", function () {
      state.open[r.id] = !state.open[r.id];
      render();
    });
    return tr;
  }

  function render() {
    var pages = Math.max(1, Math.ceil(view.length / pageSize));
    state.page = Math.min(Math.max(state.page, 0), pages - 1);
    var start = state.page * pageSize;
    var shown = view.slice(start, start + pageSize);
    var frag = document.createDocumentFragment();
    shown.forEach(function (r) {
      frag.appendChild(cells(r));
      if (state.open[r.id]) { frag.appendChild(details(r)); }
    });
    tbody.textContent = "";
    tbody.appendChild(frag);
    status.textContent = view.length + " of " + rows.length + " examples" +
      (view.length ? "; showing " + (start + 1) + "–" + (start + shown.length) : "");
    pageLabel.textContent = "page " + (state.page + 1) + " of " + pages;
  }

  function refresh() {
    view = rows.filter(keep);
    if (state.sort) { view.sort(compare); }
    state.page = 0;
    render();
  }

  var timer = null;
  section.querySelectorAll("[data-filter]").forEach(function (input) {
    var name = input.getAttribute("data-filter");
    var handler = function () {
      state[name] = input.type === "checkbox" ? input.checked
                  : (name === "q" ? input.value.trim().toLowerCase() : input.value);
      refresh();
    };
    if (name === "q") {  // typing: wait for a pause; the other controls apply at once
      input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(handler, 120); });
    } else {
      input.addEventListener("change", handler);
    }
  });
  section.querySelectorAll("th[data-sort]").forEach(function (th) {
    var sortBy = function () {
      var key = th.getAttribute("data-sort");
      state.desc = state.sort === key ? !state.desc : false;
      state.sort = key;
      section.querySelectorAll("th[data-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", state.desc ? "descending" : "ascending");
      refresh();
    };
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(); } });
  });
  section.querySelectorAll("button[data-page]").forEach(function (b) {
    b.addEventListener("click", function () {
      state.page += parseInt(b.getAttribute("data-page"), 10);
      render();
    });
  });
  refresh();
  section.setAttribute("data-ready-ms", (performance.now()).toFixed(1));
  section.setAttribute("data-build-ms", (performance.now() - started).toFixed(1));
})();
