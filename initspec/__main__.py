from initspec.cli import main

main()
