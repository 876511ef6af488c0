"""`slipway`: the portal from a terminal or a script, through the REST API only."""
