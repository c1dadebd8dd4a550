// The site's own script: marks the page so that a test can see it ran.
document.addEventListener("DOMContentLoaded", function () {
  var p = document.createElement("p");
  p.id = "first-party-ran";
  p.textContent = "first-party script ran";
  document.body.appendChild(p);
});
