// harness leaderboard: sortable, filterable tables. No dependencies, no network, no eval.
// Tables are rendered in rank order by the server; this file only reorders and hides rows.
"use strict";
(function () {
  function cellValue(row, col, type) {
    var cell = row.cells[col];
    if (!cell) { return null; }
    var raw = cell.getAttribute("data-v");
    if (raw === null) { raw = cell.textContent.trim(); }
    if (type === "num") {
      if (raw === "") { return null; }
      var n = Number(raw);
      return isNaN(n) ? null : n;
    }
    return raw.toLowerCase();
  }

  function sortTable(table, th) {
    var headers = table.tHead.rows[0].cells;
    var col = Array.prototype.indexOf.call(headers, th);
    var button = th.querySelector("button");
    var type = button.getAttribute("data-type") || "text";
    // First click sorts best-first for scored columns (data-best), else ascending.
    var current = th.getAttribute("aria-sort");
    var best = button.getAttribute("data-best") || "ascending";
    var next = current === "none" || !current ? best : (current === "ascending" ? "descending" : "ascending");
    for (var i = 0; i < headers.length; i++) { headers[i].setAttribute("aria-sort", "none"); }
    th.setAttribute("aria-sort", next);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = next === "ascending" ? 1 : -1;
    rows.forEach(function (r, i) { r.setAttribute("data-i", String(i)); });
    rows.sort(function (a, b) {
      var va = cellValue(a, col, type), vb = cellValue(b, col, type);
      if (va === null && vb === null) { return Number(a.dataset.i) - Number(b.dataset.i); }
      if (va === null) { return 1; }   // missing values always last
      if (vb === null) { return -1; }
      if (va < vb) { return -sign; }
      if (va > vb) { return sign; }
      return Number(a.dataset.i) - Number(b.dataset.i);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    announce(table, th.textContent.trim() + " sorted " + next);
  }

  function announce(table, text) {
    var live = document.getElementById(table.id + "-count");
    if (live) { live.textContent = text + ". " + visibleCount(table); }
  }

  function visibleCount(table) {
    var rows = table.tBodies[0].rows, shown = 0;
    for (var i = 0; i < rows.length; i++) { if (!rows[i].hidden) { shown++; } }
    return shown + " of " + rows.length + " rows shown";
  }

  function filterTable(table, query) {
    var q = query.trim().toLowerCase();
    var rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var name = (rows[i].getAttribute("data-name") || rows[i].textContent).toLowerCase();
      rows[i].hidden = q !== "" && name.indexOf(q) === -1;
    }
    var live = document.getElementById(table.id + "-count");
    if (live) { live.textContent = visibleCount(table); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        var button = th.querySelector("button");
        if (button) { button.addEventListener("click", function () { sortTable(table, th); }); }
      });
    });
    var inputs = document.querySelectorAll("input[data-filter]");
    Array.prototype.forEach.call(inputs, function (input) {
      var table = document.getElementById(input.getAttribute("data-filter"));
      if (!table) { return; }
      var box = input.closest(".filter");
      if (box) { box.hidden = false; }  // filtering needs this script: hidden until it runs
      input.addEventListener("input", function () { filterTable(table, input.value); });
    });
    document.documentElement.classList.add("js");
  });
})();
