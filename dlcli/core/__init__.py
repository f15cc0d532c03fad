"""The shared core: model factories, data, the training loop and run folders.

Nothing here imports Click or exits the process; failures are `dlcli.errors` exceptions.
"""
