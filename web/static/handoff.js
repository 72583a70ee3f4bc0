// Desktop hand-off: poll the journey the phone is finishing and, once the
// user approved or cancelled there, return this browser to the initiator.
(function () {
  "use strict";
  var main = document.getElementById("handoff");
  if (!main) return;
  var url = "/openfinance/consent-flow/handoff/" + encodeURIComponent(main.dataset.callback);
  var status = document.getElementById("handoff-status");
  var messages = { AUTHENTICATED: "Você entrou no aplicativo. Conclua a autorização no celular.",
    APPROVED: "Autorizado no celular. Voltando…", CANCELLED: "Cancelado no celular. Voltando…", EXPIRED: "O tempo para autorizar acabou. Voltando…",
    NOT_FOUND: "Não encontramos esta autorização. Volte à instituição que fez o pedido e comece de novo." };
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (messages[j.status]) status.textContent = messages[j.status];
        if (j.redirectUri) { window.location.assign(j.redirectUri); return; }
        if (j.status !== "NOT_FOUND") setTimeout(poll, 2000);
      }, function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
