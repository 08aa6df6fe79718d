// The idle-time warning, and nothing else. The pages work without it: the "Stay signed in" button in the
// footer posts a normal form. With it, the warning appears two minutes before the session would end, and
// "Stay signed in" restarts the server's idle clock without leaving the page.
(function () {
  "use strict";
  var body = document.body;
  var idle = Number(body.getAttribute("data-idle-seconds"));
  var warn = Number(body.getAttribute("data-warning-seconds"));
  var alertBox = document.getElementById("idle-alert");
  if (!idle || !alertBox) {
    return;
  }
  var warnTimer = null;
  var endTimer = null;

  function schedule() {
    window.clearTimeout(warnTimer);
    window.clearTimeout(endTimer);
    alertBox.hidden = true;
    warnTimer = window.setTimeout(function () {
      alertBox.hidden = false;
      var button = alertBox.querySelector("button");
      if (button) {
        button.focus();
      }
    }, Math.max(idle - warn, 0) * 1000);
    // A little after the server has ended the session: reloading shows the sign-in page and why.
    endTimer = window.setTimeout(function () {
      window.location.reload();
    }, (idle + 5) * 1000);
  }

  function stay(event) {
    var form = event.target;
    if (!window.fetch || !window.URLSearchParams) {
      return; // the form posts as usual
    }
    event.preventDefault();
    var data = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name) {
        data.append(el.name, el.value);
      }
    });
    data.append("js", "1");
    window.fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (response) {
      if (response.status === 204) {
        schedule();
      } else {
        window.location.reload();
      }
    }, function () {
      form.submit();
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.keep-alive"), function (form) {
    form.addEventListener("submit", stay);
  });
  schedule();
}());
