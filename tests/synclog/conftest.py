from postgres_server import postgres_server_url, postgres_url  # noqa: F401  (fixtures)
