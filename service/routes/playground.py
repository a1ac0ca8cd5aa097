"""`GET /playground`: a browser page for chat and the four tasks, served from package files.

The page is static (`service/static/playground/`: HTML, JS, CSS; no build step, no CDN) and
talks to this gateway's own API with `fetch`. One route per file, not a `StaticFiles` mount, so
every path is a fixed route template (bounded `endpoint` labels) and `PATHS` can be listed as
open in the security middleware: a browser opening the page cannot send a key, and the page
holds nothing secret. `config.json` tells the page whether its API calls need a key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from service.http.deps import SettingsDep

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "playground"
PAGE = "/playground"
# File name -> media type; each is served at /playground/<name>.
ASSETS = {
    "playground.js": "text/javascript",  # the panels; imports the two modules below
    "api.js": "text/javascript",  # calls to the API, streams, errors
    "live.js": "text/javascript",  # the live metrics view
    "playground.css": "text/css",
}
CONFIG = f"{PAGE}/config.json"
PATHS = frozenset({PAGE, CONFIG, *(f"{PAGE}/{name}" for name in ASSETS)})
# The page is fetched again on each load, so a new version shows after a restart.
_NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["playground"], include_in_schema=False)


@router.get(PAGE)
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=_NO_CACHE)


def _asset_route(name: str, media_type: str) -> None:
    def asset() -> FileResponse:
        return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_NO_CACHE)

    router.add_api_route(f"{PAGE}/{name}", asset, methods=["GET"], name=f"playground {name}")


for _name, _media_type in ASSETS.items():
    _asset_route(_name, _media_type)


@router.get(CONFIG)
def config(settings: SettingsDep) -> dict[str, object]:
    """What the page needs before its first call: the model's name and whether a key is needed."""
    return {
        "model": settings.model_name,
        "auth": bool(settings.api_keys) or settings.api_key_file is not None,
        "max_labels": settings.max_labels,
    }
