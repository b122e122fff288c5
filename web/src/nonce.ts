// The Content-Security-Policy nonce the server put in this page (a fresh one per response): style elements need it.
// Ant Design's CSS-in-JS gets it through ConfigProvider; a few rc-component helpers (the table's scrollbar
// measurement) create <style> elements without asking, so every <style> this page's own script creates is given
// the nonce too. Script from anywhere else cannot run here (script-src 'self'), so this trusts only our bundle.
export const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? "";

const createElement = document.createElement.bind(document);
document.createElement = ((tagName: string, options?: ElementCreationOptions) => {
  const element = createElement(tagName, options);
  if (element instanceof HTMLStyleElement) element.nonce = nonce;
  return element;
}) as typeof document.createElement;
