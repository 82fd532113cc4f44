"""The web app: server-rendered pages (Jinja2) for people who sign in with an e-mail and a
password. Pages call the same services as the API (sales/...); this package holds only the HTTP
side of the browser: pages, templates, static files, session cookies, CSRF, security headers."""
