from spo_cli.cli import main

main()
