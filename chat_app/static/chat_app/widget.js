/* Heptora web chat: an embeddable widget (<script src="/chat/widget.js">) and the full page at /chat/.
   Plain JavaScript, no framework, no CDN. It talks to POST /api/v1/chat/messages with the page's session
   and polls GET /api/v1/chat/conversations/{id}/messages?after=<id> for updates. */
(function () {
  "use strict";
  var config = window.HEPTORA_CHAT_CONFIG || {};
  var api = config.api || "/api/v1/chat/messages";
  var base = api.replace(/messages\/?$/, "");
  var storageKey = "heptora-chat-conversation";
  var counter = 0;

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function loadCss() {
    if (!config.css || document.querySelector('link[href="' + config.css + '"]')) { return; }
    var link = el("link", { rel: "stylesheet", href: config.css });
    document.head.appendChild(link);
  }

  function Chat(root, mode) {
    this.root = root;
    this.mode = mode;
    this.conversationId = null;
    this.lastId = 0;
    this.seen = {};
    this.pollDelay = parseInt(root.getAttribute("data-poll") || "2000", 10);
    this.idlePolls = 0;
    this.timer = null;
    this.busy = false;
    try { this.conversationId = window.sessionStorage.getItem(storageKey); } catch (e) { /* storage off */ }
    this.build();
  }

  Chat.prototype.build = function () {
    var id = "heptora-chat-input-" + (++counter);
    this.section = el("section", { "class": "heptora-chat heptora-chat-" + this.mode, "aria-label": "Chat with Heptora" });
    this.log = el("div", { "class": "heptora-log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
                           "aria-label": "Conversation with Heptora", tabindex: "0" });
    this.form = el("form", { "class": "heptora-form" });
    var label = el("label", { "for": id, "class": "heptora-visually-hidden" }, "Message to Heptora");
    this.input = el("input", { id: id, type: "text", autocomplete: "off", maxlength: "2000", name: "message",
                               placeholder: "Type a command, e.g. process order ORD-2024-001" });
    this.send = el("button", { type: "submit", "class": "heptora-send" }, "Send");
    this.form.appendChild(label);
    this.form.appendChild(this.input);
    this.form.appendChild(this.send);
    this.section.appendChild(this.log);
    this.section.appendChild(this.form);
    this.root.appendChild(this.section);
    var self = this;
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = self.input.value.trim();
      if (!text || self.busy) { return; }
      self.input.value = "";
      self.post({ text: text }, text);
    });
    if (config.signedIn === false) {
      this.system("Please sign in to chat with Heptora.", config.login);
      this.input.disabled = true;
      this.send.disabled = true;
      return;
    }
    if (this.conversationId) {
      this.fetchNew(true);
    } else {
      this.system('Hi! Tell me what to run, for example "process order ORD-2024-001 as high priority", or say "help".');
    }
  };

  Chat.prototype.system = function (text, href) {
    var item = el("div", { "class": "heptora-msg heptora-system" });
    var p = el("p", {}, text);
    if (href) {
      p.appendChild(document.createTextNode(" "));
      p.appendChild(el("a", { href: href + "?next=" + encodeURIComponent(window.location.pathname) }, "Sign in"));
    }
    item.appendChild(p);
    this.log.appendChild(item);
    this.scroll();
  };

  Chat.prototype.scroll = function () { this.log.scrollTop = this.log.scrollHeight; };

  Chat.prototype.userSays = function (text) {
    var item = el("div", { "class": "heptora-msg heptora-user" });
    item.appendChild(el("span", { "class": "heptora-visually-hidden" }, "You: "));
    item.appendChild(el("p", {}, text));
    this.log.appendChild(item);
    this.scroll();
  };

  Chat.prototype.botSays = function (message) {
    if (message.id && this.seen[message.id]) { return; }
    if (message.id) {
      this.seen[message.id] = true;
      this.lastId = Math.max(this.lastId, message.id);
    }
    var item = el("div", { "class": "heptora-msg heptora-bot", "data-id": String(message.id || "") });
    item.appendChild(el("span", { "class": "heptora-visually-hidden" }, "Heptora: "));
    item.appendChild(el("p", {}, message.text));
    var buttons = message.buttons || [];
    if (buttons.length) {
      var group = el("div", { "class": "heptora-buttons", role: "group", "aria-label": "Quick replies" });
      var self = this;
      buttons.forEach(function (button) {
        var b = el("button", { type: "button", "class": "heptora-quick", "data-value": button.value }, button.label);
        b.addEventListener("click", function () {
          if (self.busy) { return; }
          Array.prototype.forEach.call(group.querySelectorAll("button"), function (x) { x.disabled = true; });
          self.post({ action: button.value }, button.label);
        });
        group.appendChild(b);
      });
      item.appendChild(group);
    }
    this.log.appendChild(item);
    this.scroll();
  };

  Chat.prototype.request = function (method, url, body) {
    var headers = { "Accept": "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = cookie("csrftoken");
    }
    return fetch(url, { method: method, headers: headers, credentials: "same-origin",
                        body: body ? JSON.stringify(body) : undefined })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) {
            var error = new Error((data.error && data.error.message) || ("HTTP " + response.status));
            error.status = response.status;
            throw error;
          }
          return data;
        });
      });
  };

  Chat.prototype.remember = function (conversationId) {
    this.conversationId = conversationId;
    try { window.sessionStorage.setItem(storageKey, conversationId); } catch (e) { /* storage off */ }
  };

  Chat.prototype.post = function (body, shown) {
    var self = this;
    this.userSays(shown);
    if (this.conversationId) { body.conversationId = this.conversationId; }
    this.busy = true;
    this.section.setAttribute("aria-busy", "true");
    return this.request("POST", api, body).then(function (data) {
      self.remember(data.conversationId);
      (data.messages || []).forEach(function (m) { self.botSays(m); });
      self.idlePolls = 0;
      self.schedule();
    }).catch(function (error) {
      if (error.status === 404 && body.conversationId) {
        self.conversationId = null;
        try { window.sessionStorage.removeItem(storageKey); } catch (e) { /* storage off */ }
      }
      self.system(error.status === 401 || error.status === 403
        ? "Your session has ended. Please sign in again." : "Could not reach Heptora: " + error.message,
        error.status === 401 || error.status === 403 ? config.login : null);
    }).then(function () {
      self.busy = false;
      self.section.removeAttribute("aria-busy");
      self.input.focus();
    });
  };

  Chat.prototype.fetchNew = function (restoring) {
    var self = this;
    if (!this.conversationId) { return Promise.resolve(); }
    var url = base + "conversations/" + encodeURIComponent(this.conversationId) + "/messages?after=" + this.lastId;
    return this.request("GET", url).then(function (data) {
      var messages = data.messages || [];
      messages.forEach(function (m) { self.botSays(m); });
      self.idlePolls = messages.length ? 0 : self.idlePolls + 1;
      self.schedule();
    }).catch(function (error) {
      if (error.status === 404) {
        self.conversationId = null;
        try { window.sessionStorage.removeItem(storageKey); } catch (e) { /* storage off */ }
        if (restoring) { self.system('Hi! Tell me what to run, or say "help".'); }
        return;
      }
      self.schedule();
    });
  };

  Chat.prototype.schedule = function () {
    var self = this;
    if (this.timer) { window.clearTimeout(this.timer); }
    // Poll every couple of seconds while things happen, more slowly after a minute of quiet.
    var delay = this.idlePolls > 30 ? this.pollDelay * 5 : this.pollDelay;
    this.timer = window.setTimeout(function () {
      self.timer = null;
      if (document.hidden) { self.schedule(); return; }
      self.fetchNew(false);
    }, delay);
  };

  function floating() {
    var holder = el("div", { "class": "heptora-floating" });
    var panelId = "heptora-chat-panel-" + (++counter);
    var launcher = el("button", { type: "button", "class": "heptora-launcher", "aria-expanded": "false",
                                  "aria-controls": panelId }, "Chat with Heptora");
    var panel = el("div", { id: panelId, "class": "heptora-panel", hidden: "" });
    holder.appendChild(panel);
    holder.appendChild(launcher);
    document.body.appendChild(holder);
    var chat = null;
    function close() {
      panel.hidden = true;
      launcher.setAttribute("aria-expanded", "false");
      launcher.focus();
    }
    launcher.addEventListener("click", function () {
      var open = panel.hidden;
      panel.hidden = !open;
      launcher.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) {
        if (!chat) { chat = new Chat(panel, "floating"); }
        chat.input.focus();
      }
    });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { close(); }
    });
  }

  function start() {
    loadCss();
    var roots = document.querySelectorAll("div#heptora-chat, div[data-heptora-chat]");
    if (roots.length) {
      Array.prototype.forEach.call(roots, function (root) {
        var chat = new Chat(root, root.getAttribute("data-mode") || "page");
        chat.input.focus();
      });
    } else {
      floating();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
