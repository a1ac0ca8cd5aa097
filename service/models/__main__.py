"""`python -m service.models prepare|path`: an alias of `python -m service.weights`."""

from __future__ import annotations

from service.weights.__main__ import main

if __name__ == "__main__":
    main()
