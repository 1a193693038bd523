"""The `tdgc` command and `python -m tdgc`: signals handled before the heavy imports, so that even an
interruption during start-up is one line and a documented exit status."""

from __future__ import annotations

import sys

from tdgc import signals


def main() -> None:
    signals.install()
    try:
        from tdgc.cli import main as cli_main
    except KeyboardInterrupt as exc:
        name, code = signals.stopped_by(exc)
        sys.stderr.write(f"tdgc: interrupted ({name}) while starting; nothing was done\n")
        sys.exit(code)
    cli_main()


if __name__ == "__main__":
    main()
