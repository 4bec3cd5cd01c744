// finloop console: small progressive enhancements; every page works without this script.
(function () {
  // Ask before a form marked data-confirm does something that cannot be undone.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  // "Back" links return to the page the person came from (their href is the fallback without a script).
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-back]");
    if (link && window.history.length > 1) { event.preventDefault(); window.history.back(); }
  });
  // A page that shows a status still in flight (the hosted checkout) polls its JSON until it settles.
  function poll(element) {
    var url = element.getAttribute("data-poll");
    var done = (element.getAttribute("data-final") || "").split(",");
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        element.textContent = body.status_label || body.status;
        element.setAttribute("data-status", body.status);
        if (done.indexOf(body.status) >= 0) {
          var next = document.querySelector("[data-after-final]");
          if (next) { next.hidden = false; }
          document.querySelectorAll("[data-while-pending]").forEach(function (e) { e.hidden = true; });
        } else { setTimeout(function () { poll(element); }, 1500); }
      })
      .catch(function () { setTimeout(function () { poll(element); }, 3000); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
  });
})();
