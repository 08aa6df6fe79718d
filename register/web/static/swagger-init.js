/* Swagger UI for the register's OpenAPI document, loaded from a file rather than an inline script so the
   page's Content-Security-Policy needs no 'unsafe-inline'. validatorUrl: null keeps the validator badge,
   which would send the document to another site, off. */
window.ui = SwaggerUIBundle({
  url: document.body.dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
