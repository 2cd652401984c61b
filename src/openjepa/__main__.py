from openjepa.cli import main

raise SystemExit(main())
