import sys

from ganad_clinic.cli import main

sys.exit(main())
