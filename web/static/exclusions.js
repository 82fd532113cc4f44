// The exclusion file's upload with a progress bar: the same form, sent by XMLHttpRequest so
// that its upload progress can be shown (a file may be tens of megabytes). Every rule is the
// server's; without this script the form posts as it is. Once the server has answered, the
// page it sends the reader to is opened; a refusal posts the form the plain way, so that the
// page with its error summary is the server's own.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var percent = document.getElementById("upload-percent");
  if (!form || !box || !bar || !window.XMLHttpRequest || !window.FormData) return;
  var sending = false;

  form.addEventListener("submit", function (event) {
    if (sending) { event.preventDefault(); return; }
    var file = form.querySelector("input[type=file]");
    if (!file || !file.files || !file.files.length) return; // the server says what is missing
    event.preventDefault();
    sending = true;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var share = Math.floor((e.loaded / e.total) * 100);
      bar.value = share;
      percent.textContent = share + " %";
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 200 && xhr.responseURL) {
        window.location.assign(xhr.responseURL);
      } else {
        sending = false;
        HTMLFormElement.prototype.submit.call(form);
      }
    });
    xhr.addEventListener("error", function () {
      sending = false;
      HTMLFormElement.prototype.submit.call(form);
    });
    box.hidden = false;
    form.querySelector("button[type=submit]").disabled = true;
    xhr.send(new FormData(form));
  });
})();
