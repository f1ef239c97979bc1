/*
 * Signature pad for consent forms (mouse, touch and pen through Pointer Events).
 *
 * Markup, bound by data attributes (the CSP forbids inline script):
 *   <form data-signature-form>
 *     <canvas class="mc-signature-pad" data-signature-pad></canvas>
 *     <input type="hidden" name="signature" data-signature-input>
 *     <div data-signature-error data-empty-message="..." hidden></div>
 *     <button type="button" data-signature-clear>
 *   </form>
 * On submit the drawing goes into the hidden input as a PNG data URL; an empty pad
 * stops the submission and shows the message.
 */
(function () {
  "use strict";

  // The server refuses images over 3000 px a side; stay well below on large screens.
  var MAX_BACKING_SIDE = 2000;
  var INK = "#111827";

  function SignaturePad(form) {
    this.form = form;
    this.canvas = form.querySelector("[data-signature-pad]");
    this.input = form.querySelector("[data-signature-input]");
    this.error = form.querySelector("[data-signature-error]");
    this.clearButton = form.querySelector("[data-signature-clear]");
    this.context = this.canvas.getContext("2d");
    this.hasInk = false;
    this.strokes = {}; // last point of each active pointer, by pointerId
    this.ratio = 1;
    this.cssWidth = 0;
    this.cssHeight = 0;
    if (!this.canvas.hasAttribute("tabindex")) {
      this.canvas.setAttribute("tabindex", "-1");
    }
    this.resize();
    this.bind();
  }

  SignaturePad.prototype.resize = function () {
    var rect = this.canvas.getBoundingClientRect();
    var width = Math.max(1, Math.round(rect.width));
    var height = Math.max(1, Math.round(rect.height));
    if (width === this.cssWidth && height === this.cssHeight) {
      return;
    }
    var ratio = Math.min(window.devicePixelRatio || 1, 2, MAX_BACKING_SIDE / width, MAX_BACKING_SIDE / height);
    var previous = null;
    if (this.hasInk) {
      // Resizing a canvas wipes it: keep what was drawn (a tablet turned mid-signature).
      previous = document.createElement("canvas");
      previous.width = this.canvas.width;
      previous.height = this.canvas.height;
      previous.getContext("2d").drawImage(this.canvas, 0, 0);
    }
    var oldRatio = this.ratio;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.ratio = ratio;
    this.cssWidth = width;
    this.cssHeight = height;
    this.context.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.context.lineCap = "round";
    this.context.lineJoin = "round";
    this.context.strokeStyle = INK;
    this.context.fillStyle = INK;
    if (previous) {
      this.context.drawImage(previous, 0, 0, previous.width / oldRatio, previous.height / oldRatio);
    }
  };

  SignaturePad.prototype.point = function (event) {
    var rect = this.canvas.getBoundingClientRect();
    var pressure = event.pointerType === "pen" && event.pressure > 0 ? event.pressure : 0.5;
    return {
      x: event.clientX - rect.left,
      y: event.clientY - rect.top,
      width: event.pointerType === "pen" ? 1.2 + 2.6 * pressure : 2.4,
    };
  };

  SignaturePad.prototype.dot = function (p) {
    this.context.beginPath();
    this.context.arc(p.x, p.y, p.width / 2, 0, Math.PI * 2);
    this.context.fill();
  };

  SignaturePad.prototype.line = function (from, to) {
    this.context.beginPath();
    this.context.lineWidth = (from.width + to.width) / 2;
    this.context.moveTo(from.x, from.y);
    this.context.lineTo(to.x, to.y);
    this.context.stroke();
  };

  SignaturePad.prototype.inked = function () {
    this.hasInk = true;
    this.hideError();
  };

  SignaturePad.prototype.showError = function (message) {
    if (this.error) {
      this.error.textContent = message;
      this.error.hidden = false;
    }
    this.canvas.classList.add("is-invalid");
  };

  SignaturePad.prototype.hideError = function () {
    if (this.error && !this.error.hidden) {
      this.error.hidden = true;
    }
    this.canvas.classList.remove("is-invalid");
  };

  SignaturePad.prototype.clear = function () {
    this.context.save();
    this.context.setTransform(1, 0, 0, 1, 0, 0);
    this.context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.context.restore();
    this.hasInk = false;
    this.strokes = {};
    this.input.value = "";
  };

  SignaturePad.prototype.bind = function () {
    var pad = this;
    var canvas = this.canvas;

    canvas.addEventListener("pointerdown", function (event) {
      if (event.pointerType === "mouse" && event.button !== 0) {
        return;
      }
      event.preventDefault();
      if (canvas.setPointerCapture) {
        canvas.setPointerCapture(event.pointerId);
      }
      var p = pad.point(event);
      pad.strokes[event.pointerId] = p;
      pad.dot(p);
      pad.inked();
    });

    canvas.addEventListener("pointermove", function (event) {
      var last = pad.strokes[event.pointerId];
      if (!last) {
        return;
      }
      event.preventDefault();
      // Coalesced events keep fast strokes smooth on devices that sample faster than frames.
      var events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      if (!events.length) {
        events = [event];
      }
      for (var i = 0; i < events.length; i++) {
        var p = pad.point(events[i]);
        pad.line(last, p);
        last = p;
      }
      pad.strokes[event.pointerId] = last;
    });

    function end(event) {
      delete pad.strokes[event.pointerId];
    }
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("lostpointercapture", end);
    // Long-press menus and drags would interrupt a signature on touch screens.
    canvas.addEventListener("contextmenu", function (event) {
      event.preventDefault();
    });

    if (this.clearButton) {
      this.clearButton.addEventListener("click", function () {
        pad.clear();
        pad.hideError();
        canvas.focus();
      });
    }

    this.form.addEventListener("submit", function (event) {
      if (!pad.hasInk) {
        event.preventDefault();
        pad.input.value = "";
        pad.showError(pad.error ? pad.error.getAttribute("data-empty-message") : "");
        canvas.scrollIntoView({ block: "center" });
        canvas.focus();
        return;
      }
      pad.input.value = canvas.toDataURL("image/png");
    });

    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        pad.resize();
      }).observe(canvas);
    } else {
      window.addEventListener("resize", function () {
        pad.resize();
      });
    }
  };

  function init(root) {
    root = root || document;
    var forms = Array.prototype.slice.call(root.querySelectorAll("[data-signature-form]"));
    if (root.matches && root.matches("[data-signature-form]")) {
      forms.push(root);
    }
    for (var i = 0; i < forms.length; i++) {
      var form = forms[i];
      if (form.getAttribute("data-signature-ready") === "1" || !form.querySelector("[data-signature-pad]")) {
        continue;
      }
      form.setAttribute("data-signature-ready", "1");
      new SignaturePad(form);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      init(document);
    });
  } else {
    init(document);
  }
  // Content swapped in by htmx gets its pads too.
  document.addEventListener("htmx:load", function (event) {
    init(event.target);
  });
})();
