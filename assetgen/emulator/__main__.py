"""``python -m assetgen.emulator`` (README) runs the gateway emulator, ``assetgen.testing.emulator``."""
import sys

from ..testing.emulator import main

if __name__ == "__main__":
    sys.argv[0] = "python -m assetgen.emulator"      # argparse's usage line names what was typed
    main()
