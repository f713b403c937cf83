/* Heptora tracking page: polls the execution's status about once a second and updates the page in place,
   until the execution reaches a final status. No reload, no framework. */
(function () {
  "use strict";
  var tracker = document.getElementById("tracker");
  if (!tracker) return;
  var url = tracker.getAttribute("data-status-url");
  var delay = 1000;
  var failures = 0;

  function byId(id) { return document.getElementById(id); }

  function setText(id, text) {
    var el = byId(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function renderValue(value) {
    if (value === null || ["string", "number", "boolean"].indexOf(typeof value) >= 0) {
      return document.createTextNode(value === null ? "" : String(value));
    }
    var pre = document.createElement("pre");
    pre.textContent = JSON.stringify(value, null, 2);
    return pre;
  }

  function renderResult(result) {
    var box = byId("run-result");
    var list = byId("run-result-list");
    if (result === null || result === undefined) { box.hidden = true; return; }
    list.textContent = "";
    var entries = (typeof result === "object" && !Array.isArray(result)) ? Object.keys(result).map(function (k) {
      return [k, result[k]];
    }) : [["Value", result]];
    entries.forEach(function (pair) {
      var dt = document.createElement("dt");
      dt.textContent = pair[0];
      var dd = document.createElement("dd");
      dd.appendChild(renderValue(pair[1]));
      list.appendChild(dt);
      list.appendChild(dd);
    });
    box.hidden = false;
  }

  function renderEvents(events) {
    var list = byId("run-events");
    list.textContent = "";
    events.forEach(function (event) {
      var li = document.createElement("li");
      li.className = "event event-" + event.level;
      var time = document.createElement("time");
      time.setAttribute("datetime", event.time);
      time.textContent = (event.time || "").slice(11, 19);
      li.appendChild(time);
      li.appendChild(document.createTextNode(" " + event.message));
      list.appendChild(li);
    });
  }

  function render(data) {
    var badge = byId("run-status");
    badge.className = "badge badge-" + data.status;
    badge.setAttribute("data-status", data.status);
    setText("run-status", data.statusLabel);
    setText("run-progress-text", data.progress.text);
    byId("run-progress-bar").style.width = data.progress.percent + "%";
    byId("run-progressbar").setAttribute("aria-valuenow", String(data.progress.percent));
    var message = byId("run-message");
    message.hidden = !data.message || data.status === "success";
    setText("run-message", data.message || "");
    byId("run-cancel").hidden = !data.cancelRequested;
    var error = byId("run-error");
    error.hidden = !data.error;
    if (data.error) {
      setText("run-error-message", data.error.message || data.error.code);
      setText("run-error-step", data.error.step ? "(at step " + data.error.step + ")" : "");
    }
    renderResult(data.result);
    renderEvents(data.events || []);
    byId("run-retry").hidden = !data.canRetry;
    tracker.setAttribute("data-final", data.final ? "true" : "false");
    document.title = data.statusLabel + " · " + data.executionId + " · Heptora";
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        render(data);
        if (!data.final) setTimeout(poll, delay);
      })
      .catch(function () {
        // A network hiccup or a restarting server: keep trying, more slowly.
        failures += 1;
        setTimeout(poll, Math.min(delay * Math.pow(2, failures), 15000));
      });
  }

  var retry = byId("run-retry");
  if (retry) {
    retry.addEventListener("submit", function () {
      var button = retry.querySelector("button");
      setTimeout(function () { button.disabled = true; button.textContent = button.dataset.sendingText; }, 0);
    });
  }
  if (tracker.getAttribute("data-final") !== "true") setTimeout(poll, delay);
})();
