from callscribe.cli import main

main()
