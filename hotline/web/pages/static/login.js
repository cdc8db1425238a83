// The sign-in form: POST /api/v1/auth/login (sets the session cookie), then on to the page asked for.
(function () {
  "use strict";
  const H = window.Hotline;
  const form = document.getElementById("login-form");
  const box = document.getElementById("login-error");
  const button = document.getElementById("login-submit");

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    box.hidden = true;
    H.clearInvalid(form);
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    if (!username || !password) {
      box.textContent = H.t("login.missing");
      box.hidden = false;
      (username ? form.elements.password : form.elements.username).setAttribute("aria-invalid", "true");
      return;
    }
    button.disabled = true;
    try {
      await H.api("POST", "/api/v1/auth/login", { username: username, password: password }, { noLoginRedirect: true });
      location.assign(H.page.next || "/");
    } catch (err) {
      if (err.status === 401) box.textContent = H.t("login.wrong");
      else if (err.status === 429) box.textContent = H.t("login.throttled", { message: err.message });
      else box.textContent = H.showError(err, form);
      box.hidden = false;
      form.elements.password.select();
      button.disabled = false;
    }
  });
})();
