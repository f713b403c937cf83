/* Heptora web forms: conveniences only; the server checks everything again and is the authority.
   - fields with a show_if condition appear and disappear as the controlling field changes (a hidden
     field is disabled, so it is neither required nor sent);
   - text areas with a limit count the characters left;
   - the first field with an error gets the focus;
   - the submit button is disabled once the form is sent (the hidden submission token makes a second
     send harmless anyway). */
(function () {
  "use strict";

  function controllerValue(el) {
    if (!el) return null;
    if (el.type === "checkbox") return el.checked;
    return el.value;
  }

  function matches(actual, expected) {
    if (typeof expected === "boolean") return Boolean(actual) === expected;
    if (typeof actual === "boolean") return actual === (String(expected).toLowerCase() === "true");
    return String(actual == null ? "" : actual).toLowerCase() === String(expected).toLowerCase();
  }

  function applyConditions(form) {
    var dependents = form.querySelectorAll("[data-show-if-field]");
    // Twice, so a field that depends on a field that depends on another settles.
    for (var pass = 0; pass < 2; pass++) {
      dependents.forEach(function (wrapper) {
        var controller = document.getElementById(wrapper.getAttribute("data-show-if-field"));
        var expected = JSON.parse(wrapper.getAttribute("data-show-if-value"));
        var controllerHidden = controller && controller.closest(".field") && controller.closest(".field").hidden;
        var show = !controllerHidden && matches(controllerValue(controller), expected);
        wrapper.hidden = !show;
        if (show) wrapper.removeAttribute("data-hidden"); else wrapper.setAttribute("data-hidden", "");
        wrapper.querySelectorAll("input, select, textarea").forEach(function (input) { input.disabled = !show; });
      });
    }
  }

  function updateCounter(textarea) {
    var counter = document.getElementById(textarea.getAttribute("data-counter"));
    var max = parseInt(textarea.getAttribute("maxlength"), 10);
    if (!counter || !max) return;
    var left = max - textarea.value.length;
    counter.textContent = left + " of " + max + " characters left";
    counter.classList.toggle("over", left <= 0);
  }

  document.querySelectorAll("form[data-heptora-form]").forEach(function (form) {
    applyConditions(form);
    form.addEventListener("change", function () { applyConditions(form); });
    form.addEventListener("input", function (event) {
      if (event.target.matches("textarea[data-counter]")) updateCounter(event.target);
      if (event.target.matches("select, input[type=checkbox]")) applyConditions(form);
    });
    form.querySelectorAll("textarea[data-counter]").forEach(updateCounter);

    var firstInvalid = form.querySelector("[aria-invalid=true]:not([disabled])");
    if (firstInvalid) firstInvalid.focus();

    form.addEventListener("submit", function () {
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        // Disabled after this event's default action has started, so the button's own value still goes.
        setTimeout(function () {
          button.disabled = true;
          if (button.dataset.sendingText) button.textContent = button.dataset.sendingText;
        }, 0);
      });
    });
  });

  // Back/forward cache: a page restored after sending must not keep a disabled button.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-heptora-form] button[type=submit]").forEach(function (button) {
      button.disabled = false;
    });
  });

  // Error summary links move the focus to the field, not just scroll to it.
  document.querySelectorAll(".error-summary a[href^='#']").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (target) { event.preventDefault(); target.focus(); }
    });
  });
})();
