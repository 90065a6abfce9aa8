"""The sync-log page: server-rendered (Jinja2), filters and a detail view, minimal script."""
