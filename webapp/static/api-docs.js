// Starts Swagger UI on /api/docs (a file, not an inline script: the app's CSP allows only 'self').
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
