// Provisio console: confirmations, partial updates and the phone-width menu. Pages work without
// it; it never evaluates text from the server as code (the page's Content-Security-Policy allows
// only this file).
(function () {
  "use strict";
  var csrf = function () { return document.body.getAttribute("data-csrf") || ""; };

  // <form data-confirm="..."> (or its submit button's data-confirm) asks before a destructive action.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  // Replaces the content of the element named by data-target with the HTML at url.
  function load(url, target) {
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf() } })
      .then(function (r) { return r.text().then(function (t) { return { ok: r.ok, text: t }; }); })
      .then(function (r) { target.innerHTML = r.text; target.dispatchEvent(new CustomEvent("provisio:loaded", { bubbles: true })); })
      .catch(function () { target.textContent = "The hub could not be reached."; });
  }

  function urlFor(el) {
    var url = el.getAttribute("data-fetch");
    if (el.form && el.getAttribute("data-fetch-form") !== null) {
      var params = new URLSearchParams(new FormData(el.form));
      params.delete("_csrf");
      url += (url.indexOf("?") < 0 ? "?" : "&") + params.toString();
    } else if ("value" in el && el.name) {
      url += (url.indexOf("?") < 0 ? "?" : "&") + encodeURIComponent(el.name) + "=" + encodeURIComponent(el.value);
    }
    return url;
  }

  // <input data-fetch="/url" data-target="#id"> loads /url?name=value as you type (debounced);
  // <select data-fetch=...> on change; <div data-fetch=... data-poll="2000"> every 2 s while shown.
  function wire(root) {
    root.querySelectorAll("[data-fetch]").forEach(function (el) {
      if (el.__wired) { return; }
      el.__wired = true;
      var target = document.querySelector(el.getAttribute("data-target")) || el;
      var timer = null;
      var run = function () { load(urlFor(el), target); };
      if (el.tagName === "INPUT" || el.tagName === "TEXTAREA") {
        el.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 250); });
      } else if (el.tagName === "SELECT") {
        el.addEventListener("change", run);
      }
      var poll = parseInt(el.getAttribute("data-poll") || "0", 10);
      if (poll > 0) {
        var tick = function () {
          if (!document.body.contains(el)) { return; }
          if (el.getAttribute("data-poll-stop") === null) { run(); setTimeout(tick, poll); }
        };
        setTimeout(tick, poll);
      }
      if (el.getAttribute("data-load") !== null) { run(); }
    });
  }

  // <button data-pick="value" data-pick-into="#input"> fills an input (search-as-you-type pickers).
  document.addEventListener("click", function (event) {
    var pick = event.target.closest("[data-pick]");
    if (pick) {
      var input = document.querySelector(pick.getAttribute("data-pick-into"));
      if (input) { input.value = pick.getAttribute("data-pick"); input.focus(); }
      event.preventDefault();
    }
    var toggle = event.target.closest(".menu-toggle");
    if (toggle) {
      var menu = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = menu.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
  });

  document.addEventListener("provisio:loaded", function (event) { wire(event.target); });
  document.addEventListener("DOMContentLoaded", function () { wire(document); });
})();
