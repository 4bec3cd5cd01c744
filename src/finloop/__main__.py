from finloop.cli import app

app()
