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
