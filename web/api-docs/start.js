// Starts Swagger UI on the document the API serves. validatorUrl: null keeps it from sending the document to
// swagger.io's validator: the page makes no request outside its own origin.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
