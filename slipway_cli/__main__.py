from slipway_cli.main import cli

cli(prog_name="slipway")
