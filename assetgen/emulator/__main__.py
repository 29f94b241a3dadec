"""``python -m assetgen.emulator`` (README) runs the gateway emulator, ``assetgen.testing.emulator``."""
from ..testing.emulator import main

if __name__ == "__main__":
    main()
