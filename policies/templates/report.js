(function () {
  "use strict";
  var table = document.getElementById("verdicts");
  var buttons = document.querySelectorAll(".filters button[data-filter]");
  var search = document.getElementById("verdict-search");
  var shown = document.getElementById("verdicts-shown");
  var current = "all";

  function apply() {
    var query = search.value.trim().toLowerCase();
    var visible = 0;
    table.querySelectorAll("tbody.group").forEach(function (group) {
      var any = false;
      group.querySelectorAll("tr.result").forEach(function (row) {
        var show = (current === "all" || row.getAttribute("data-status") === current) &&
          (query === "" || row.getAttribute("data-search").indexOf(query) !== -1 ||
           group.getAttribute("data-search").indexOf(query) !== -1);
        row.hidden = !show;
        if (show) { any = true; visible += 1; }
      });
      group.hidden = !any;
    });
    shown.textContent = String(visible);
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      current = button.getAttribute("data-filter");
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
      apply();
    });
  });
  search.addEventListener("input", apply);

  var figure = document.getElementById("architecture-figure");
  var toggle = document.getElementById("architecture-size");
  toggle.addEventListener("click", function () {
    var fit = figure.classList.toggle("fit");
    toggle.textContent = fit ? "actual size" : "fit to width";
  });
  apply();
})();
