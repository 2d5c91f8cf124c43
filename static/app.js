// Small enhancements; every page works without them (plain links and forms, POST -> redirect -> GET).
// How htmx treats answers is configured once in base.html (portal/web.py HTMX_CONFIG): 4xx answers
// are swapped like 2xx (they carry the form with its errors), 5xx answers and network failures show
// the error banner below, links to files (<a download>) are never boosted.

// The error banner: visible, announced (role=alert), dismissible.
function showErrorBanner(message) {
  const banner = document.getElementById("error-banner");
  if (!banner) { return; }
  document.getElementById("error-banner-text").textContent = message;
  banner.hidden = false;
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-dismiss]");
  if (button) {
    const target = document.getElementById(button.dataset.dismiss);
    if (target) { target.hidden = true; }
  }
});

// The server's own message for a failed request (portal/errors.py sends it as an HX-Trigger event).
document.addEventListener("portal-error", (event) => showErrorBanner(event.detail.value));
document.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  if ((event.detail.xhr.getResponseHeader("HX-Trigger") || "").includes("portal-error")) { return; }
  showErrorBanner(status >= 500
    ? `Something went wrong on our side (error ${status}); it has been logged. Nothing you saw changed may have been saved: reload the page and try again.`
    : `The portal answered with error ${status}. Reload the page and try again.`);
});
document.addEventListener("htmx:sendError", () => {
  showErrorBanner("The portal could not be reached. Check your connection, then try again.");
});
document.addEventListener("htmx:timeout", () => {
  showErrorBanner("The portal took too long to answer. Try again in a moment.");
});
// A new page or section arrived: an old error no longer applies.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.shouldSwap && event.detail.xhr.status < 500) {
    const banner = document.getElementById("error-banner");
    if (banner && event.detail.boosted) { banner.hidden = true; }
  }
});

// Confirmations (hx-confirm="..."): an accessible <dialog> instead of the browser's confirm().
// Cancel has the focus first; Tab reaches Confirm, Enter chooses, Escape cancels. Without
// JavaScript the form simply submits. The answer is read from the dialog form's submit (or its
// cancel event), both synchronous with the key press, never from the later "close" event.
let confirmAction = null;
function confirmDialog() {
  const dialog = document.getElementById("confirm-dialog");
  if (dialog && !dialog.dataset.ready) {
    dialog.dataset.ready = "1";
    dialog.querySelector("form").addEventListener("submit", (event) => {
      const action = confirmAction;
      confirmAction = null;
      if (action && event.submitter && event.submitter.value === "confirm") { action(); }
    });
    dialog.addEventListener("cancel", () => { confirmAction = null; });
  }
  return dialog;
}
document.addEventListener("htmx:confirm", (event) => {
  const question = event.detail.question;
  const dialog = confirmDialog();
  if (!question || !dialog || typeof dialog.showModal !== "function") { return; }
  event.preventDefault();
  document.getElementById("confirm-dialog-text").textContent = question;
  const ok = document.getElementById("confirm-dialog-ok");
  const button = event.detail.elt.querySelector && event.detail.elt.querySelector("[type=submit]");
  ok.textContent = (button && button.textContent.trim()) || "Confirm";
  confirmAction = () => event.detail.issueRequest(true);
  dialog.showModal();
});

// Close an open navigation dropdown when the user clicks elsewhere or presses Escape.
document.addEventListener("click", (event) => {
  document.querySelectorAll("header details[open]").forEach((menu) => {
    if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
  });
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") { return; }
  document.querySelectorAll("header details[open]").forEach((menu) => {
    menu.removeAttribute("open");
    menu.querySelector("summary").focus();
  });
});

// The admin side navigation on a phone: the menu button opens it (without JavaScript the link to
// #sidenav opens it through :target); Escape or "Close menu" closes it and returns the focus.
function setSidenav(open) {
  const nav = document.getElementById("sidenav");
  const button = document.querySelector(".menu-button");
  if (!nav || !button) { return; }
  nav.classList.toggle("open", open);
  button.setAttribute("aria-expanded", open ? "true" : "false");
  if (open) { (nav.querySelector("a[aria-current]") || nav.querySelector("ul a")).focus(); } else { button.focus(); }
}
document.addEventListener("click", (event) => {
  if (event.target.closest(".menu-button")) {
    event.preventDefault();
    setSidenav(!document.getElementById("sidenav").classList.contains("open"));
  } else if (event.target.closest(".menu-close")) {
    event.preventDefault();
    setSidenav(false);
  }
});
document.addEventListener("keydown", (event) => {
  const nav = document.getElementById("sidenav");
  if (event.key === "Escape" && nav && nav.classList.contains("open")) { setSidenav(false); }
});

// Upload form: highlight the drop zone while dragging.
function initDropzones(root) {
  root.querySelectorAll(".dropzone:not([data-ready])").forEach((zone) => {
    zone.dataset.ready = "1";
    const input = zone.querySelector("input[type=file]");
    ["dragenter", "dragover"].forEach((type) =>
      zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("dragover"); }));
    ["dragleave", "drop"].forEach((type) =>
      zone.addEventListener(type, () => zone.classList.remove("dragover")));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) { input.files = event.dataTransfer.files; }
    });
  });
}
document.addEventListener("DOMContentLoaded", () => initDropzones(document));
document.addEventListener("htmx:load", (event) => initDropzones(event.detail.elt));

// htmx reports upload progress of boosted multipart forms; show it in the form's <progress>.
document.addEventListener("htmx:xhr:progress", (event) => {
  const bar = document.getElementById("upload-progress");
  if (bar && event.detail.lengthComputable) {
    bar.hidden = false;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
  }
});
