// Ponte consent journey (WebView). It drives the interaction API of seed 002
// — login, consent, cancel — with the device the user is on, then follows
// the redirect back to the initiator. A partner's app that already knows its
// user opens the WebView with #accessToken=<login JWT> or calls
// window.PonteJourney.login(token) from native code.
(function () {
  "use strict";
  var main = document.getElementById("journey");
  if (!main) return;
  var id = main.dataset.interaction;
  var client = main.dataset.client;
  var handoff = main.dataset.handoff === "true";
  var busy = false;

  function $(sel) { return document.getElementById(sel); }

  // device reports what the PCM needs: platform, operating system, version.
  function device() {
    var ua = navigator.userAgent, m, os = "OTHER", version = "unknown";
    if ((m = ua.match(/Android (\d+(?:[._]\d+)*)/))) { os = "ANDROID"; version = m[1]; }
    else if ((m = ua.match(/(?:iPhone|iPad|iPod)[^)]*? OS (\d+(?:_\d+)*)/))) { os = "IOS"; version = m[1]; }
    else if ((m = ua.match(/Windows NT (\d+(?:\.\d+)*)/))) { os = "WINDOWS"; version = m[1]; }
    else if ((m = ua.match(/Mac OS X (\d+(?:[._]\d+)*)/))) { os = "MACOS"; version = m[1]; }
    else if (/CrOS|Linux/.test(ua)) { os = "LINUX"; m = ua.match(/Linux ([A-Za-z0-9_]+)/); if (m) version = m[1]; }
    else if (/BSD|SunOS/.test(ua)) { os = "UNIX"; }
    return { platform: main.dataset.platform || "BROWSER", os: os, osVersion: version.replace(/_/g, ".").slice(0, 32) };
  }

  function say(text, isError) {
    var m = $("message");
    m.textContent = text;
    m.className = isError ? "notice error" : "notice";
    m.hidden = false;
  }

  // Errors people read: the API's codes mapped to Portuguese. The API's own
  // detail text is for developers (English) and is never shown. final marks
  // the states where approving or cancelling can no longer succeed.
  var initiator = ($("initiator") || {}).textContent || "a instituição";
  var problems = {
    INTERACTION_FINISHED: { text: "Esta autorização já foi concluída. Você já pode voltar para " + initiator + ".", final: true },
    INTERACTION_EXPIRED: { text: "O tempo para autorizar acabou. Volte para " + initiator + " e comece de novo.", final: true },
    INTERACTION_NOT_FOUND: { text: "Não encontramos esta autorização. Volte para " + initiator + " e comece de novo.", final: true },
    CONSENT_NOT_AWAITING_AUTHORISATION: { text: "Este pedido não aguarda mais a sua autorização. Volte para " + initiator + " e comece de novo.", final: true },
    UNAUTHORIZED: { text: "Sua sessão terminou. Volte ao aplicativo " + client + " e abra a autorização de novo.", final: true },
    LOGIN_REQUIRED: { text: "Entre na sua conta antes de continuar." },
    INVALID_ACCESS_TOKEN: { text: "Não foi possível confirmar o seu acesso. Entre de novo no aplicativo " + client + "." },
    WRONG_USER: { text: "Você entrou com um CPF diferente do que está neste pedido. Entre com o CPF do titular." },
    DEBTOR_ACCOUNT_NOT_FOUND: { text: "Esta conta não está entre as suas. Escolha outra conta." },
    DEBTOR_ACCOUNT_BLOCKED: { text: "Esta conta está bloqueada. Escolha outra conta." },
    DEBTOR_ACCOUNT_NOT_ALLOWED: { text: "Este pedido só pode usar a conta que " + initiator + " indicou. Escolha essa conta." },
    TOO_MANY_REQUESTS: { text: "Muitas tentativas seguidas. Aguarde um instante e tente de novo." }
  };
  var unknownProblem = { text: "Não foi possível concluir agora. Tente novamente em instantes." };
  var offline = { text: "Sem conexão. Verifique a sua internet e tente de novo." };

  function problem(code, text, final) {
    var e = new Error(text);
    e.final = !!final;
    e.code = code;
    return e;
  }

  // fail shows a problem; a final one also takes the actions away.
  function fail(e) {
    var p = e && e.code !== undefined ? e : problem("", offline.text, false);
    say(p.message, true);
    if (p.final) hideActions();
  }

  function hideActions() {
    ["approve", "cancel", "accounts", "login"].forEach(function (id) { var el = $(id); if (el) el.hidden = true; });
  }

  function api(step, body) {
    var url = "/api/" + encodeURIComponent(client) + "/consents/v1/interactions/" + encodeURIComponent(id) + "/" + step;
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          var code = ((j.errors && j.errors[0]) || {}).code || "";
          var p = problems[code] || unknownProblem;
          throw problem(code, p.text, p.final);
        }
        return j;
      });
    });
  }

  // A data-sharing consent: the user picks every account to share
  // (checkboxes), or none when the consent shares no account data.
  var dataKind = main.dataset.kind === "data", multi = dataKind && main.dataset.needsAccounts === "true";

  // The names people know for the account types, as customers.AccountLabel
  // writes them on the server; a payment account has no branch (agência).
  var accountTypeNames = { CACC: "Conta corrente", SVGS: "Conta poupança", TRAN: "Conta de pagamento" };
  function accountLabel(a) {
    return (accountTypeNames[a.accountType] || a.accountType) + (a.issuer ? " · ag. " + a.issuer : "") + " · conta " + a.number;
  }

  function showAccounts(accounts) {
    var list = $("account-list");
    (accounts || []).forEach(function (a, i) {
      var label = document.createElement("label");
      label.className = "account";
      var input = document.createElement("input");
      input.type = dataKind ? "checkbox" : "radio"; input.name = "debtor"; input.value = String(i);
      input.disabled = a.status !== "ACTIVE";
      input.dataset.account = JSON.stringify({ ispb: a.ispb, issuer: a.issuer || "", number: a.number, accountType: a.accountType });
      input.addEventListener("change", function () { $("approve").disabled = false; });
      var text = document.createElement("span");
      text.textContent = accountLabel(a) + (a.status !== "ACTIVE" ? " (bloqueada)" : "");
      label.appendChild(input); label.appendChild(text);
      list.appendChild(label);
    });
    var first = list.querySelector("input:not([disabled])");
    if (first) { first.checked = true; $("approve").disabled = false; }
    $("login").hidden = true;
    $("accounts").hidden = dataKind && !multi;
  }

  function login(token) {
    if (busy) return Promise.resolve();
    busy = true;
    say("Entrando…");
    return api("login", { accessToken: token, device: device() }).then(function (j) {
      var what = { data: "Confira os dados e escolha as contas a compartilhar.", sweeping: "Confira os limites e escolha a conta de origem." }[main.dataset.kindName];
      say("Olá! " + (what || "Confira o pagamento e escolha a conta."));
      showAccounts(j.accounts);
    }, fail).then(function () { busy = false; });
  }

  function finish(j, text) {
    say(text);
    hideActions();
    if (handoff) { say(text + " Continue no computador."); return; }
    if (j.redirectUri) window.location.assign(j.redirectUri);
  }

  function decide(step) {
    if (busy) return;
    busy = true;
    var body = { device: device() };
    if (step === "consent") {
      var chosen = document.querySelector('input[name="debtor"]:checked');
      if (dataKind) {
        // Ponte's "accounts" extension: every account chosen; debtorAccount,
        // required by the seed, is the first (or any active one when the
        // consent shares no account data).
        var picked = Array.prototype.map.call(document.querySelectorAll('input[name="debtor"]:checked'),
          function (i) { return JSON.parse(i.dataset.account); });
        if (!multi) { picked = []; chosen = document.querySelector('input[name="debtor"]:not([disabled])'); }
        if (multi && !picked.length) { say("Escolha ao menos uma conta.", true); busy = false; return; }
        if (!chosen) { say("Nenhuma conta ativa.", true); busy = false; return; }
        body.accounts = picked;
      }
      if (!chosen) { say(main.dataset.kindName === "sweeping" ? "Escolha a conta de origem." : "Escolha a conta de débito.", true); busy = false; return; }
      body.partialApproval = false;
      body.debtorAccount = JSON.parse(chosen.dataset.account);
    }
    say(step === "consent" ? "Autorizando…" : "Cancelando…");
    api(step, body).then(function (j) {
      finish(j, step === "consent" ? (dataKind ? "Compartilhamento autorizado." : main.dataset.kindName === "sweeping" ? "Transferências autorizadas." : "Pagamento autorizado.") : "Autorização cancelada.");
    }, fail).then(function () { busy = false; });
  }

  if (main.dataset.resume && !handoff) return; // finished: the page offers the way back

  var approve = $("approve"), cancel = $("cancel");
  // A reload after login: the accounts are already on the page.
  document.querySelectorAll('input[name="debtor"]').forEach(function (input) {
    input.addEventListener("change", function () { approve.disabled = false; });
  });
  if (approve) approve.addEventListener("click", function () { decide("consent"); });
  if (cancel) cancel.addEventListener("click", function () { decide("cancel"); });

  var form = $("sandbox-login");
  if (form) form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    fetch("/sandbox/partner-app/token", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ document: $("login-document").value, password: $("login-password").value })
    }).then(function (r) {
      if (r.status === 401) throw problem("UNAUTHORIZED", "CPF ou senha inválidos.", false);
      if (r.status === 400) throw problem("PARAMETRO_INVALIDO", "Informe o CPF (11 dígitos) e a senha.", false);
      if (!r.ok) throw problem("", unknownProblem.text, false);
      return r.json().then(function (j) { return login(j.accessToken); });
    }).catch(fail);
  });

  // The partner's app hands its login over in the fragment (never sent to
  // any server); drop it from the address bar and history at once.
  var m = window.location.hash.match(/[#&]accessToken=([^&]+)/);
  if (m) {
    history.replaceState(null, "", window.location.pathname + window.location.search);
    login(decodeURIComponent(m[1]));
  }
  window.PonteJourney = { login: login };
})();
