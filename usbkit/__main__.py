from usbkit.cli import main

raise SystemExit(main())
