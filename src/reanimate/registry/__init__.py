"""The registry: preserved analyses as immutable, content-addressed bundle versions, and
reinterpretation campaigns submitted, run by workers and served over HTTP (docs/registry.md).

Laid out as a FastAPI service: `config` (settings), `db` (engine, sessions, migrations),
`models` (SQLAlchemy tables), `schemas` (pydantic bodies), `blobs` (the content-addressed file
store), `auth` (hashed tokens, scopes), `crud` (the database operations), `api/routes` (JSON API),
`web` (server-rendered pages), `app` (the application), `campaigns` (submission checks and the
worker's view of a campaign), `worker` (leases points, runs them on Dask), `client` (HTTP client
for the CLI). Nothing here knows about the AGC.
"""
