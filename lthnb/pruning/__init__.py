"""Pruning as pure numpy: scores, masks from scores, and the per-round schedule of how many
weights each layer keeps. Imports no other lthnb folder at run time.
"""
