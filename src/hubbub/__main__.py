import sys

from hubbub.cli import main

sys.exit(main())
