"""Container health check: exit 0 when the gateway's /ready answers 200, else 1.

Used by the Dockerfile's HEALTHCHECK (the slim image has no curl). Standard library only, so it
runs in every image target. The port follows GATEWAY_PORT, as the server does.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("GATEWAY_PORT", "8000")
    url = os.environ.get("GATEWAY_HEALTHCHECK_URL", f"http://127.0.0.1:{port}/ready")
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 (fixed local URL)
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError, ValueError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
