"""``python -m comfy_worker`` is the ``comfy-worker`` command."""

import sys

from .cli import main

sys.exit(main())
