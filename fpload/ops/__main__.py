"""``python -m fpload.ops build|info``."""

import sys

from fpload.errors import FploadError
from fpload.ops._cli import ops_app

if __name__ == "__main__":
    try:
        ops_app(standalone_mode=False)
    except FploadError as err:
        print(f"fpload: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
