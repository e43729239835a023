"""The one training engine: a round's networks as one stack on the iteration clock, with its
optimizer and device set-up. Imports params, nets, data and the bottom layer.
"""
