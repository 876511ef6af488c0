// The few behaviours the pages need beyond htmx, as a file (the Content-Security-Policy
// allows no inline script): open a dialog the server sent as modal, close it on Cancel.
(function () {
  function openModals(root) {
    root.querySelectorAll("dialog[data-open-modal]").forEach(function (dialog) {
      if (!dialog.open) {
        dialog.showModal();
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    openModals(document);
  });
  document.addEventListener("htmx:load", function (event) {
    openModals(event.target.parentNode || document);
  });
  document.addEventListener("click", function (event) {
    var cancel = event.target.closest("[data-close-dialog]");
    var dialog = cancel && cancel.closest("dialog");
    if (dialog) {
      event.preventDefault();
      dialog.close();
    }
  });
})();

// Pages that update themselves (docs/pages.md). An element with `data-live="channel:topic
// …"` and `hx-trigger="live"` asks the server again for itself when an event names one of
// its topics. One EventSource per page; the browser resumes it with Last-Event-ID after a
// dropped connection. When the stream cannot open (a proxy that blocks or buffers it),
// every live element is asked again every `data-live-fallback` seconds instead.
(function () {
  var source = null;
  var fallback = null;
  var firstOpenOfSource = true;
  // Elements (by id) that heard of a change while their own request was in flight: the
  // answer swaps the element out, and a trigger queued on the old one would be lost.
  var pending = {};

  function tokens(element) {
    return (element.getAttribute("data-live") || "").split(/\s+/).filter(Boolean);
  }

  function liveElements() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
  }

  function fire(element) {
    if (element.id && element.classList.contains("htmx-request")) {
      pending[element.id] = true;
    } else {
      htmx.trigger(element, "live");
    }
  }

  function firePending() {
    Object.keys(pending).forEach(function (id) {
      var element = document.getElementById(id);
      if (element && !element.classList.contains("htmx-request")) {
        delete pending[id];
        htmx.trigger(element, "live");
      }
    });
  }

  function refresh(matches) {
    liveElements().forEach(function (element) {
      if (!matches || tokens(element).some(matches)) {
        fire(element);
      }
    });
  }

  function startFallback() {
    var seconds = parseInt(document.body.getAttribute("data-live-fallback"), 10) || 15;
    document.body.setAttribute("data-live-state", "polling");
    if (!fallback) {
      fallback = setInterval(function () { refresh(null); }, seconds * 1000);
    }
  }

  function stopFallback() {
    if (fallback) {
      clearInterval(fallback);
      fallback = null;
    }
  }

  function channels() {
    var names = {};
    liveElements().forEach(function (element) {
      tokens(element).forEach(function (token) { names[token.split(":")[0]] = true; });
    });
    return Object.keys(names).sort();
  }

  function connect() {
    var names = channels();
    var url = document.body.getAttribute("data-live-url");
    if (!names.length || !url || !window.EventSource) {
      if (names.length) { startFallback(); }
      return;
    }
    source = new EventSource(url + "?" + names.map(function (name) {
      return "channel=" + encodeURIComponent(name);
    }).join("&"));
    firstOpenOfSource = true;
    var opened = false;
    // A stream that neither opens nor fails (held by a buffering proxy) counts as blocked.
    var patience = setTimeout(function () { if (!opened) { startFallback(); } }, 5000);
    source.addEventListener("stream-open", function () {
      opened = true;
      clearTimeout(patience);
      stopFallback();
      document.body.setAttribute("data-live-state", "open");
      if (firstOpenOfSource) {
        // What changed between rendering this page and subscribing is fetched once; a
        // browser's own reconnect resumes from its Last-Event-ID instead.
        firstOpenOfSource = false;
        refresh(null);
      }
    });
    source.addEventListener("change", function (event) {
      var change = JSON.parse(event.data);
      refresh(function (token) {
        var parts = token.split(":");
        return parts[0] === change.channel && change.topics.indexOf(parts[1]) >= 0;
      });
    });
    source.addEventListener("stream-error", function () {
      // Refused (signed out, say): poll, and try a new stream later.
      source.close();
      startFallback();
      setTimeout(connect, 60000);
    });
    source.onerror = function () {
      startFallback();
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, 30000);
      }
    };
  }

  document.addEventListener("htmx:afterSettle", firePending);
  document.addEventListener("htmx:afterRequest", function () { setTimeout(firePending, 50); });
  document.addEventListener("DOMContentLoaded", connect);
})();
