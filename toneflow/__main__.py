import sys

from toneflow.cli import main

sys.exit(main())
