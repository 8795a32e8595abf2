"""``python -m ctl`` is ``centaurusctl``."""

from ctl.cli.main import main

main()
