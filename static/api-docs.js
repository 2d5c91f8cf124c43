// The API reference page: Swagger UI (vendored) reading the app's own OpenAPI document.
// A separate file, not an inline script, so the Content-Security-Policy stays "script-src 'self'".
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
  });
})();
