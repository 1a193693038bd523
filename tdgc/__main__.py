from tdgc.cli import main

main()
