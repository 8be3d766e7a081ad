"""The JSON API under /api/v1: error bodies (`errors`), request dependencies (`deps`: settings,
the principal, sessions, pagination) and one module of routes per resource (`routes/`)."""
