// The web-admin's little JavaScript: confirmations before destructive actions, and rule text checked
// as it is typed (forms whose fields say data-check="URL": the server answers {"ok": ..., "error": ...}).
(function () {
  'use strict';
  document.addEventListener('submit', function (event) {
    var form = event.target;
    var question = form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  function csrfToken() {
    var input = document.querySelector('input[name=csrf_token]');
    return input ? input.value : '';
  }

  var timers = new WeakMap();
  document.addEventListener('input', function (event) {
    var field = event.target;
    var url = field.getAttribute && field.getAttribute('data-check');
    if (!url) { return; }
    clearTimeout(timers.get(field));
    timers.set(field, setTimeout(function () {
      var body = new URLSearchParams();
      body.set('csrf_token', csrfToken());
      body.set('text', field.value);
      fetch(url, {method: 'POST', body: body, credentials: 'same-origin'})
        .then(function (r) { return r.json(); })
        .then(function (out) {
          var note = document.getElementById('check-' + field.name);
          if (!note) { return; }
          note.textContent = out.ok ? (out.note || 'OK') : out.error;
          note.className = out.ok ? 'help' : 'error';
        });
    }, 300));
  });
}());
