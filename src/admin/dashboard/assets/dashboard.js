// pixelguard dashboard: the page is complete without this script; it only reloads the page
// once a minute (the sampler's period), unless a details table is open.
"use strict";
window.setInterval(function () {
  if (!document.querySelector("details[open]")) {
    window.location.reload();
  }
}, 60000);
