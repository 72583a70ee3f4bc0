// The brand answers the hybrid flow in the URL fragment, which never reaches
// a server: post it to Ponte, which checks it and finishes the journey.
(function () {
  "use strict";
  var form = document.getElementById("callback-form");
  if (!form) return;
  var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  var fields = ["code", "id_token", "state", "error", "error_description", "response"];
  var any = false;
  fields.forEach(function (name) {
    var v = params.get(name);
    if (v === null) return;
    var input = document.createElement("input");
    input.type = "hidden"; input.name = name; input.value = v;
    form.appendChild(input);
    any = true;
  });
  // Drop the secrets from the address bar and history before leaving.
  history.replaceState(null, "", window.location.pathname);
  if (!any) {
    document.getElementById("callback-status").textContent = "Retorno da instituição sem dados. Volte ao aplicativo e tente de novo.";
    return;
  }
  form.submit();
})();
