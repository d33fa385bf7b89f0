// the scripts both reports share (report.html, bench.html)
    }, function (err) {
      el.textContent = "This figure could not be drawn: " + err;
      draw(i + 1);
    });
  }
  if (typeof Plotly === "undefined") {
    document.documentElement.setAttribute("data-plots-ready", "error");
  } else { draw(0); }

  // sortable tables: click a header to sort by that column (numbers numerically)
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(ths, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        function key(r) {
          var t = r.cells[col].textContent.trim();
          var n = parseFloat(t);
          return isNaN(n) ? t.toLowerCase() : n;
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (typeof x !== typeof y) { x = String(x); y = String(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
</script>
</body>
</html>
