"""``python -m assetgen`` works like the ``assetgen`` command."""

from .cli import main

if __name__ == "__main__":
    main()
