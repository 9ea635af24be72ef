// Live password-policy feedback: the only script of the portal. The rules
// are checked by the server (the same function that enforces them), so
// the list can never disagree with what registration accepts.
(function () {
  "use strict";
  var input = document.querySelector("input[data-policy]");
  var list = document.getElementById("password-rules");
  if (!input || !list) { return; }
  var timer = null;
  function update() {
    if (input.value === "") {
      list.querySelectorAll("li").forEach(function (li) { li.className = ""; });
      return;
    }
    fetch("/selfcare/v1/password/check", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password: input.value }), credentials: "same-origin"
    }).then(function (r) { return r.json(); }).then(function (res) {
      var broken = res.violations || [];
      list.querySelectorAll("li").forEach(function (li) {
        li.className = broken.indexOf(li.getAttribute("data-rule")) >= 0 ? "bad" : "ok";
      });
      var status = document.getElementById("password-status");
      if (status) { status.textContent = broken.length === 0 ? status.getAttribute("data-ok") : status.getAttribute("data-bad"); }
    }).catch(function () {});
  }
  input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(update, 200); });
})();
