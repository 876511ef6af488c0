"""What is deployed where: services, environments, deployment targets and their boundaries,
variables and links, freezes.
"""
