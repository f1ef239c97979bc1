// Calendar cards: htmx swaps a card after an action. A refused action (400, 409) still
// answers with the re-rendered card, the reason inside it, so that answer is swapped too.
// Focus then goes to the new card: the replaced button is gone, and keyboard and
// screen-reader users must not be thrown back to the top of the page.
(function () {
  "use strict";

  var cardToFocus = null;

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.matches || !target.matches("[data-appointment]")) {
      return;
    }
    var status = event.detail.xhr.status;
    if (status === 400 || status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
    cardToFocus = target.id;
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (!cardToFocus) {
      return;
    }
    var card = document.getElementById(cardToFocus);
    cardToFocus = null;
    if (card) {
      card.focus({ preventScroll: true });
    }
  });
})();
