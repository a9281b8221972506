// Filters of the stui-conformance HTML report. Runs from file:// with no network. It only shows and
// hides elements the page already has (the `hidden` property) and writes counts with textContent: it
// never builds markup from text, so nothing a target sent can become code here.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  if (!form) { return; }
  document.body.classList.add("js");
  var items = Array.prototype.slice.call(document.querySelectorAll(".f-item"));
  var texts = items.map(function (el) { return (el.textContent || "").toLowerCase(); });
  var sets = items.map(function (el) {
    return {
      outcomes: (el.getAttribute("data-outcomes") || "").split(" ").filter(Boolean),
      level: el.getAttribute("data-level") || "",
      groups: (el.getAttribute("data-groups") || "").split(" ").filter(Boolean)
    };
  });

  function checked(name) {
    var out = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[name='" + name + "']"), function (box) {
      if (box.checked) { out[box.value] = true; }
    });
    return out;
  }

  function apply() {
    var outcomes = checked("outcome");
    var levels = checked("level");
    var group = form.elements.group.value;
    var words = form.elements.q.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = {};
    var total = {};
    items.forEach(function (el, i) {
      var s = sets[i];
      var visible = s.outcomes.some(function (o) { return outcomes[o]; }) &&
        (!(s.level in { MUST: 1, SHOULD: 1, MAY: 1 }) || !!levels[s.level]) &&
        (!group || s.groups.indexOf(group) >= 0) &&
        words.every(function (w) { return texts[i].indexOf(w) >= 0; });
      el.hidden = !visible;
      var section = el.getAttribute("data-section") || "";
      total[section] = (total[section] || 0) + 1;
      shown[section] = (shown[section] || 0) + (visible ? 1 : 0);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".shown"), function (out) {
      var section = out.getAttribute("data-section");
      out.textContent = "showing " + (shown[section] || 0) + " of " + (total[section] || 0);
    });
  }

  function setOutcomes(wanted) {
    Array.prototype.forEach.call(form.querySelectorAll("input[name='outcome']"), function (box) {
      box.checked = wanted === null || wanted.indexOf(box.value) >= 0;
    });
    apply();
  }

  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  document.getElementById("only-problems").addEventListener("click", function () {
    setOutcomes(["FAILED", "NON-STRICT", "TIMEOUT", "ERROR", "NOT-CHECKED", "BASELINED"]);
  });
  document.getElementById("show-all").addEventListener("click", function () {
    form.reset();
    setOutcomes(null);
  });
  apply();
}());
