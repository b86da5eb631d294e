from egide.cli.main import main

main()
