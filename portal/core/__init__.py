"""The ground floor of the ground floor: encryption, logs, errors, image references, CSV
cells, client addresses, queue and task names. Imports nothing of Slipway above it.
"""
