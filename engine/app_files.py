"""Where the files beside the Python package live: `server.py`, `dashboard.py`, `pages/` and
the SQL migrations in `schema/`.

In a checkout they sit at the top of the repository (the layout the project's user asked
for). In an installed wheel (`pip install .`) setuptools ships the same files inside the
package as `engine/_app/` (see `[tool.setuptools.package-dir]` in pyproject.toml), so
`seaco serve` works from any directory without the checkout.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _app_dir() -> Path:
    shipped = _PACKAGE_DIR / "_app"
    if (shipped / "server.py").is_file():
        return shipped
    return _PACKAGE_DIR.parent  # a checkout (editable install or running from the tree)


APP_DIR = _app_dir()
"""The directory holding server.py, dashboard.py, pages/ and schema/; the web process's cwd."""

SCHEMA_DIR = APP_DIR / "schema"
"""The numbered SQL migrations (`NNN_name.sql`), applied in order by `seaco migrate`."""
