from egide.cli.main import app

app()
