"""The audit log: the one way to write an event, the chain and its verification, reading
it, and the vocabulary of actions.
"""
